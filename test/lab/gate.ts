// Gating for real-peer suites: skip with a clear message when the lab cannot run here (not root, a
// missing binary), but FAIL instead when SPOTFLEET_REAL_PEERS=1 (CI), so a missing install step
// cannot pass silently.
import { describe, it } from 'vitest';
import { labUnavailableReason } from './lab.js';

/** `describe` for suites that need the lab; see the module comment for the skip/fail rule. */
export function describeLab(name: string, fn: () => void): void {
  const reason = labUnavailableReason();
  if (reason === undefined) {
    describe(name, fn);
    return;
  }
  if (process.env.SPOTFLEET_REAL_PEERS === '1') {
    describe(name, () => {
      it('has its real peers (SPOTFLEET_REAL_PEERS=1)', () => {
        throw new Error(`real peers required but unavailable: ${reason}`);
      });
    });
    return;
  }
  describe.skip(`${name} (skipped: ${reason})`, fn);
}
