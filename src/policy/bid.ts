// The bid strategy lives in src/core/bid.ts so that providers (which import only the SDK and core)
// can use it; the policy re-exports it.
export * from '../core/bid.js';
