// List prices of a cloud (on-demand, and spot where the cloud publishes it as a list), read from
// the cloud's price API and kept, with the time they were read, in the provider's data folder: a
// fresh copy is used as is; a stale one is refreshed; when the API cannot be reached, the last copy
// read (however old), else a dated table shipped with spotfleet, stands in, with a warning that
// says which and how old. Prices are USD per hour for a whole machine, keyed `capacity|type`.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ProviderError, errorMessage } from '../../../core/errors.js';
import type { CapacityType } from '../../../core/types.js';
import type { ProviderLogger } from '../../sdk.js';

export type PriceKey = `${CapacityType}|${string}`;

export function priceKey(capacity: CapacityType, type: string): PriceKey {
  return `${capacity}|${type}`;
}

export interface PriceList {
  prices: Partial<Record<PriceKey, number>>;
  /** ISO-8601: when the prices were read (or the table's date). */
  at: string;
  /** What they come from: `AWS Price List API`, `table of 2026-03-01`, … */
  source: string;
  /** Set when a stand-in is used: why. */
  warning?: string;
}

/** A dated price table shipped in the repo, for when the API cannot be reached. */
export interface PriceTable {
  /** YYYY-MM-DD the prices were taken. */
  date: string;
  /** Region the prices are for. */
  region: string;
  prices: Partial<Record<PriceKey, number>>;
}

export interface PriceBookOptions {
  provider: string;
  /** `AWS Price List API`, `Azure Retail Prices API`, `Cloud Billing Catalog`. */
  source: string;
  /** The cache file (in the provider's data folder). */
  file: string;
  /** How long prices read are fresh. Default 6 h (list prices move rarely). */
  ttlMs?: number;
  /** Reads the prices for these keys from the API. */
  fetch: (keys: PriceKey[]) => Promise<Partial<Record<PriceKey, number>>>;
  table?: PriceTable;
  log?: ProviderLogger;
  now?: () => number;
}

interface CacheFile {
  at: string;
  source: string;
  keys: PriceKey[];
  prices: Partial<Record<PriceKey, number>>;
}

export class PriceBook {
  private warned = '';
  private inflight: Promise<PriceList> | undefined;

  constructor(private readonly o: PriceBookOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private read(): CacheFile | undefined {
    if (!existsSync(this.o.file)) return undefined;
    try {
      return JSON.parse(readFileSync(this.o.file, 'utf8')) as CacheFile;
    } catch {
      return undefined;
    }
  }

  private write(c: CacheFile): void {
    mkdirSync(dirname(this.o.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.o.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(c), { mode: 0o600 });
    renameSync(tmp, this.o.file);
  }

  private warn(msg: string): void {
    if (msg === this.warned) return;
    this.warned = msg;
    this.o.log?.warn(msg, { provider: this.o.provider });
  }

  /** Prices for `keys`: cached when fresh, else from the API, else a stand-in with a warning. */
  get(keys: PriceKey[]): Promise<PriceList> {
    const want = [...new Set(keys)].sort();
    const cached = this.read();
    const covers = cached !== undefined && want.every((k) => cached.keys.includes(k));
    if (cached && covers && this.now() - Date.parse(cached.at) < (this.o.ttlMs ?? 6 * 3_600_000)) return Promise.resolve({ prices: cached.prices, at: cached.at, source: cached.source });
    this.inflight ??= (async () => {
      try {
        const prices = await this.o.fetch(want);
        const c: CacheFile = { at: new Date(this.now()).toISOString(), source: this.o.source, keys: want, prices };
        this.write(c);
        return { prices, at: c.at, source: c.source };
      } catch (e) {
        const why = errorMessage(e).replace(/^provider "[^"]*"(?: \([^)]*\))?: /, '');
        if (cached && covers) {
          const warning = `${this.o.source} unreachable (${why}); using the prices read at ${cached.at}`;
          this.warn(warning);
          return { prices: cached.prices, at: cached.at, source: `${cached.source}, read ${cached.at} (unreachable now)`, warning };
        }
        if (this.o.table) {
          const warning = `${this.o.source} unreachable (${why}); using spotfleet's price table of ${this.o.table.date} (${this.o.table.region}), which may be out of date`;
          this.warn(warning);
          return { prices: this.o.table.prices, at: `${this.o.table.date}T00:00:00.000Z`, source: `spotfleet table of ${this.o.table.date} (${this.o.source} unreachable)`, warning };
        }
        throw new ProviderError(this.o.provider, `${this.o.source} unreachable and no prices known: ${why}`, { retryable: true, cause: e });
      } finally {
        this.inflight = undefined;
      }
    })();
    return this.inflight;
  }
}

/** What an offering costs: USD per hour for the whole machine, as of `at` (ISO-8601), and where it came from. */
export interface OfferingPrice {
  pricePerHour: number;
  at: string;
  source: string;
}

/**
 * The price of one offering: the config's own (taken as of `now`), else the price list's, with the
 * list's time and source; undefined when neither has one.
 */
export function offeringPrice(own: number | undefined, list: PriceList | undefined, key: PriceKey, now: string): OfferingPrice | undefined {
  if (own !== undefined) return { pricePerHour: own, at: now, source: 'config' };
  const listed = list?.prices[key];
  return list === undefined || listed === undefined ? undefined : { pricePerHour: listed, at: list.at, source: list.source };
}
