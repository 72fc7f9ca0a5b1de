// Stable lease addresses: the address a plan shows for a lease it will acquire is derived from
// the acquire's idempotency key, so the state can record the lease under the same address.
import { describe, expect, it } from 'vitest';
import { leaseAddressForKey, parseAddress } from '../../src/core/address.js';

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
