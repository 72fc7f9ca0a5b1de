// Addresses and keys: the stable lease address a plan shows (derived from the acquire's idempotency
// key, so the state records the lease under the same address), and the provider-scoped key.
import { describe, expect, it } from 'vitest';
import { leaseAddressForKey, nodeKey, parseAddress, providerKey, splitProviderKey } from '../../src/core/address.js';

describe('leaseAddressForKey', () => {
  it('names a workload lease by workload and generation, a standby by serial and index', () => {
    expect(leaseAddressForKey('spot-v100', 'research:train-a:g3', 'sim-b5996')).toBe('lease.spot-v100.train-a-g3');
    expect(leaseAddressForKey('od', 'research:standby:od:s12:0', 'i-0abc')).toBe('lease.od.standby-s12-1');
    expect(parseAddress(leaseAddressForKey('spot-v100', 'research:train-a:g3', 'x'))).toEqual({ kind: 'lease', parts: ['spot-v100', 'train-a-g3'] });
  });

  it('falls back to the lease id for a key of another shape or none', () => {
    expect(leaseAddressForKey('spot-v100', undefined, 'sim-b5996')).toBe('lease.spot-v100.sim-b5996');
    expect(leaseAddressForKey('spot-v100', 'something-else', 'sim-b5996')).toBe('lease.spot-v100.sim-b5996');
    expect(leaseAddressForKey('spot-v100', 'research:train-a:gx', 'sim-b5996')).toBe('lease.spot-v100.sim-b5996');
  });

  it('two generations of one workload never share an address', () => {
    expect(leaseAddressForKey('p', 'f:w:g1', 'a')).not.toBe(leaseAddressForKey('p', 'f:w:g2', 'a'));
  });
});

describe('providerKey', () => {
  it('scopes an id by its provider, and splitProviderKey reads it back', () => {
    expect(providerKey('lab', 'gpu-1')).toBe('lab/gpu-1');
    expect(nodeKey('lab', 'gpu-1')).toBe(providerKey('lab', 'gpu-1'));
    expect(splitProviderKey(providerKey('lab', 'gpu-1'))).toEqual({ provider: 'lab', id: 'gpu-1' });
  });

  it('a bare id (as a user types a node) has no provider part', () => {
    expect(splitProviderKey('gpu-1')).toEqual({ provider: undefined, id: 'gpu-1' });
    expect(splitProviderKey('/gpu-1')).toEqual({ provider: undefined, id: '/gpu-1' });
  });
});
