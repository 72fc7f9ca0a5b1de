// What a state backend offers watch replicas: a leader lease with a fencing epoch. A backend that
// has it (PostgreSQL) lets several `spotfleet watch` processes share one fleet: one leads, the
// others stand by. The file backend has none: it allows one watch per fleet (watch.json).
import type { StateStore } from './store.js';

/** Who leads a fleet, as the backend records it. Times are ISO-8601, from the backend's clock. */
export interface LeaderRecord {
  epoch: number;
  /** The replica's identity: `host/pid/random`. */
  holder: string;
  /** What the replica says about itself: pid, host, the listen address of its /status. */
  info: Record<string, unknown>;
  since: string;
  renewedAt: string;
  expiresAt: string;
  /** The lease has not expired (by the backend's clock). */
  live: boolean;
  /** How many times leadership of this fleet has changed hands. */
  changes: number;
}

/** A lease this replica took. */
export interface Leadership {
  epoch: number;
  since: string;
  expiresAt: string;
}

export interface LeadershipBackend {
  /**
   * Takes the lease when nobody holds a live one, raising the epoch; undefined when another
   * replica's lease is live.
   */
  acquireLeadership(holder: string, info: Record<string, unknown>, ttlMs: number): Promise<Leadership | undefined>;
  /**
   * Extends the lease `epoch` by `ttlMs` from now (the backend's clock). False when another replica
   * took over since: this one no longer leads. A lease that expired but that nobody took over is
   * extended (nobody acted in between).
   */
  renewLeadership(holder: string, epoch: number, ttlMs: number): Promise<boolean>;
  /** Ends the lease now (a clean shutdown), so a standby takes over at once. */
  releaseLeadership(holder: string, epoch: number): Promise<void>;
  currentLeader(): Promise<LeaderRecord | undefined>;
  /**
   * From now on every write carries this epoch and is refused (FencedError) unless the epoch still
   * holds a live lease; undefined for unfenced writes (CLI commands).
   */
  setFence(epoch: number | undefined): void;
}

export function supportsLeadership(s: StateStore): s is StateStore & LeadershipBackend {
  return typeof (s as Partial<LeadershipBackend>).acquireLeadership === 'function';
}
