// The SSH toolkit shared by the ssh and docker providers and by the capacity providers whose leases
// become SSH nodes: quoting, host keys, the connection pool, nvidia-smi inventory, checkpoint
// verification, rsync transfer, curl-on-the-node metadata transport, the container labels both
// runtimes write, and the docker-CLI runtime.
export * from './quote.js';
export * from './host-keys.js';
export * from './pool.js';
export * from './nvidia-smi.js';
export * from './checkpoints.js';
export * from './rsync.js';
export * from './rsync-progress.js';
export * from './metadata-transport.js';
export * from './workload-labels.js';
export * from './node-entry.js';
export * from './node-set.js';
export * from './shell-session.js';
export * from './engine-agent.js';
export * from './relay.js';
export * from './docker-cli-runtime.js';
