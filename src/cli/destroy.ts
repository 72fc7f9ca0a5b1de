// `spotfleet destroy`: see apply.ts (same path with a destroy plan).
export { registerDestroy as register } from './apply.js';
