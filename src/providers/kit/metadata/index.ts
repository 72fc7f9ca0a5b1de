// Eviction-notice readers shared by providers (aws, gcp, azure; the ssh provider reuses them over
// a curl-on-the-node transport): transports, readers, and their helpers.
export * from './transport.js';
export * from './common.js';
export * from './aws.js';
export * from './gcp.js';
export * from './azure.js';
export * from './on-node.js';
