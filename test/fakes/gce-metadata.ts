// A fake Google Compute Engine metadata server following reference/protocols.md §2: the mandatory
// `Metadata-Flavor: Google` request header (403 without), the same header and an ETag on every
// answer, `instance/preempted` and `instance/maintenance-event`, the `wait_for_change` long-poll
// with `last_etag` and `timeout_sec`, identity items, and a 503 (or any) fault mode.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { applyFault, faultApplies, send, serveFake, type FakeHandle, type FakeServerOptions, type FaultSpec } from './http-util.js';

export type GceMaintenanceEvent = 'NONE' | 'MIGRATE_ON_HOST_MAINTENANCE' | 'TERMINATE_ON_HOST_MAINTENANCE';

export interface GceMetadataOptions extends FakeServerOptions {
  instanceId?: string;
  name?: string;
  /** Zone short name; served as `projects/<projectNumber>/zones/<zone>`. */
  zone?: string;
  projectNumber?: string;
  projectId?: string;
  machineType?: string;
  /** Longest a wait_for_change request hangs when it gives no timeout_sec (s). Default 300. */
  maxWaitSec?: number;
}

export interface GceMetadataState {
  requests: { path: string; status: number; wait: boolean }[];
  /** Long-poll requests hanging right now. */
  waiting: number;
}

export interface GceMetadataControl {
  /** Sets instance/preempted to TRUE (a Spot VM preemption). */
  preempt(): void;
  /** Back to FALSE (for tests that reuse a server). */
  clearPreempted(): void;
  setMaintenanceEvent(value: GceMaintenanceEvent): void;
  /** Sets any value under computeMetadata/v1/ (e.g. `instance/attributes/foo`). */
  setValue(path: string, value: string): void;
  setFault(fault: FaultSpec | null): void;
  state(): GceMetadataState;
}

const PREFIX = '/computeMetadata/v1/';

interface Entry {
  value: string;
  version: number;
}

/**
 * Starts a fake GCE metadata server on 127.0.0.1 (by default a free port). Its `url` plays the
 * role of `http://metadata.google.internal`.
 */
export async function startGceMetadataServer(opts: GceMetadataOptions = {}): Promise<FakeHandle<GceMetadataControl>> {
  const closing = new AbortController();
  const values = new Map<string, Entry>();
  const waiters = new Map<string, Set<() => void>>();
  let fault: FaultSpec | undefined;
  const state: GceMetadataState = { requests: [], waiting: 0 };
  const set = (key: string, value: string): void => {
    const cur = values.get(key);
    if (cur && cur.value === value) return;
    values.set(key, { value, version: (cur?.version ?? 0) + 1 });
    const ws = waiters.get(key);
    if (ws) for (const w of [...ws]) w();
  };
  set('instance/preempted', 'FALSE');
  set('instance/maintenance-event', 'NONE');
  set('instance/id', opts.instanceId ?? '4520031799277581759');
  set('instance/name', opts.name ?? 'gpu-node-1');
  set('instance/zone', `projects/${opts.projectNumber ?? '123456789012'}/zones/${opts.zone ?? 'us-central1-b'}`);
  set('instance/machine-type', `projects/${opts.projectNumber ?? '123456789012'}/machineTypes/${opts.machineType ?? 'a2-highgpu-1g'}`);
  set('project/project-id', opts.projectId ?? 'spotfleet-test');
  set('project/numeric-project-id', opts.projectNumber ?? '123456789012');

  const control: GceMetadataControl = {
    preempt: () => set('instance/preempted', 'TRUE'),
    clearPreempted: () => set('instance/preempted', 'FALSE'),
    setMaintenanceEvent(value) {
      if (!['NONE', 'MIGRATE_ON_HOST_MAINTENANCE', 'TERMINATE_ON_HOST_MAINTENANCE'].includes(value)) throw new Error(`unknown maintenance event ${String(value)}`);
      set('instance/maintenance-event', value);
    },
    setValue: (path, value) => set(path.replace(/^\/+/, ''), String(value)),
    setFault(f) {
      fault = f ?? undefined;
    },
    state: () => structuredClone(state),
  };

  const etagOf = (key: string, e: Entry): string => createHash('sha256').update(`${key}\0${e.version}\0${e.value}`).digest('hex').slice(0, 16);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://metadata.google.internal');
    const path = url.pathname;
    const wait = url.searchParams.get('wait_for_change') === 'true';
    const base = { 'Metadata-Flavor': 'Google', 'Content-Type': 'application/text' };
    const reply = (status: number, body: string, headers: Record<string, string> = {}): void => {
      state.requests.push({ path, status, wait });
      if (state.requests.length > 1000) state.requests.shift();
      send(req, res, status, body, { ...base, ...headers });
    };
    const flavor = req.headers['metadata-flavor'];
    if (flavor !== 'Google' || req.headers['x-forwarded-for'] !== undefined) {
      return reply(403, 'Your client does not have permission to get URL ' + path + ' from this server. Missing Metadata-Flavor:Google header.\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, 'Method Not Allowed\n');
    if (!path.startsWith(PREFIX)) return reply(404, 'Not Found\n');
    if (faultApplies(fault, path) && (await applyFault(fault, req, res, closing.signal, base))) {
      state.requests.push({ path, status: fault?.status ?? 200, wait });
      return;
    }
    const key = path.slice(PREFIX.length);
    let entry = values.get(key);
    if (!entry) return reply(404, 'Not Found\n');

    if (wait) {
      const lastEtag = url.searchParams.get('last_etag');
      const tsText = url.searchParams.get('timeout_sec');
      const maxSec = opts.maxWaitSec ?? 300;
      const timeoutSec = tsText !== null && /^\d+$/.test(tsText) ? Math.min(Number(tsText), maxSec) : maxSec;
      if (tsText !== null && !/^\d+$/.test(tsText)) return reply(400, 'invalid timeout_sec\n');
      // A client whose last_etag differs from the current one missed a change: answer at once.
      if (lastEtag === null || lastEtag === etagOf(key, entry)) {
        await new Promise<void>((resolve) => {
          const ws = waiters.get(key) ?? new Set<() => void>();
          waiters.set(key, ws);
          state.waiting += 1;
          const done = (): void => {
            clearTimeout(timer);
            ws.delete(done);
            closing.signal.removeEventListener('abort', done);
            res.off('close', done);
            state.waiting -= 1;
            resolve();
          };
          const timer = setTimeout(done, timeoutSec * 1000);
          ws.add(done);
          closing.signal.addEventListener('abort', done, { once: true });
          res.on('close', done);
        });
        if (res.destroyed || closing.signal.aborted) return;
        entry = values.get(key) ?? entry;
      }
    }
    reply(200, entry.value, { ETag: etagOf(key, entry) });
  }

  return serveFake(handle, control, opts, () => closing.abort());
}
