// The capacity kit: what every provider that sells machines shares (aws, gcp, azure, molt): the
// bootstrap that injects spotfleet's keys at launch, the capacity-miss cache, and LeasedNodes, which
// turns a cloud driver into capacity, nodes, runtime, storage and notices capabilities, and the
// machine types a cloud's config lists (their schema and the offline checks of a pool).
export * from './boot.js';
export * from './ice-cache.js';
export * from './leased-nodes.js';
export * from './machine-types.js';
export * from './price-book.js';
