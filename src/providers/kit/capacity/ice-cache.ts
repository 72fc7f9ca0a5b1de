// Remembers where a launch just failed for lack of capacity ("insufficient capacity" errors, as
// Karpenter's ICE cache does): an offering (capacity type, machine type, zone) that the cloud could
// not fill is skipped by the next launches and quoted unavailable until the entry expires. Kept in
// a file in the provider's data folder, so `apply`, `plan` and `watch` in other processes share it.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export interface Offering {
  capacity: 'spot' | 'on-demand';
  /** Instance type, machine type, VM size (or `*` for all of them). */
  type: string;
  /** Zone, or `*` for the whole region (quota errors). */
  zone: string;
}

export interface CapacityMiss extends Offering {
  /** The cloud's error code (InsufficientInstanceCapacity, ZONE_RESOURCE_POOL_EXHAUSTED, ...). */
  code: string;
  message: string;
  /** ms epoch. */
  at: number;
  until: number;
}

/** Default time a miss is remembered: 3 minutes, as Karpenter does. */
export const DEFAULT_CAPACITY_MISS_TTL_MS = 180_000;

const key = (o: Offering): string => `${o.capacity}|${o.type}|${o.zone}`;

export class CapacityMissCache {
  constructor(
    private readonly file: string,
    private readonly ttlMs: number = DEFAULT_CAPACITY_MISS_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  private read(): Record<string, CapacityMiss> {
    if (!existsSync(this.file)) return {};
    try {
      const all = JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, CapacityMiss>;
      const t = this.now();
      return Object.fromEntries(Object.entries(all).filter(([, m]) => m.until > t));
    } catch {
      return {};
    }
  }

  /** Records a miss; it counts until now + ttl. */
  remember(o: Offering, code: string, message: string): CapacityMiss {
    const all = this.read();
    const t = this.now();
    const m: CapacityMiss = { ...o, code, message: message.slice(0, 300), at: t, until: t + this.ttlMs };
    all[key(o)] = m;
    mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(all), { mode: 0o600 });
    renameSync(tmp, this.file);
    return m;
  }

  /** The miss that covers this offering now (its own, the type's region-wide one, or all types'). */
  missed(o: Offering): CapacityMiss | undefined {
    const all = this.read();
    return all[key(o)] ?? all[key({ ...o, zone: '*' })] ?? all[key({ ...o, type: '*', zone: '*' })] ?? all[key({ ...o, type: '*' })];
  }

  /** Every miss in force, oldest first. */
  list(): CapacityMiss[] {
    return Object.values(this.read()).sort((a, b) => a.at - b.at);
  }
}
