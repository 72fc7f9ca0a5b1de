// Gating for real-peer suites: skip with a clear message when the lab cannot run here (not root, a
// missing binary), but FAIL instead when SPOTFLEET_REAL_PEERS=1 (CI), so a missing install step
// cannot pass silently.
import { describe, it } from 'vitest';
import { labUnavailableReason } from './lab.js';
import { postgresUnavailableReason } from './postgres.js';

/** `describe` for suites that need the lab; see the module comment for the skip/fail rule. */
export function describeLab(name: string, fn: () => void): void {
  describeGated(name, labUnavailableReason(), fn);
}

/** `describe` for suites that need a real PostgreSQL server (test/lab/postgres.ts); same rule. */
export function describePostgres(name: string, fn: () => void): void {
  describeGated(name, postgresUnavailableReason(), fn);
}

function describeGated(name: string, reason: string | undefined, fn: () => void): void {
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
