// A fake Azure Instance Metadata Service for Scheduled Events following reference/protocols.md §3:
// `Metadata: true` required (400 without), the `{DocumentIncarnation, Events}` document whose
// incarnation goes up on every change, RFC 1123 NotBefore (empty once Started), StartRequests
// acknowledgements (recorded for tests), the compute identity items, a slow first call, and faults.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { applyFault, faultApplies, readBody, send, serveFake, type FakeHandle, type FakeServerOptions, type FaultSpec } from './http-util.js';

export type AzureEventType = 'Freeze' | 'Reboot' | 'Redeploy' | 'Preempt' | 'Terminate';

export interface AzureEventsOptions extends FakeServerOptions {
  /** This VM's name (the identity item, and the default `Resources`). Default `gpu-vm-0`. */
  vmName?: string;
  zone?: string;
  location?: string;
  vmSize?: string;
  vmId?: string;
  /** The service switches itself on at the first request, which can take minutes; simulate it. */
  firstCallDelayMs?: number;
  /** What an accepted StartRequest does to its event: `start` (default) or `remove`. */
  ackBehaviour?: 'start' | 'remove';
  now?: () => number;
}

export interface AzureEventInput {
  EventType: AzureEventType;
  EventId?: string;
  EventStatus?: 'Scheduled' | 'Started';
  Resources?: string[];
  /** ms since epoch, or an RFC 1123 string; default now + the minimum notice for the type. */
  NotBefore?: number | string;
  Description?: string;
  EventSource?: 'Platform' | 'User';
  DurationInSeconds?: number;
}

export interface AzureEvent {
  EventId: string;
  EventStatus: 'Scheduled' | 'Started';
  EventType: AzureEventType;
  ResourceType: 'VirtualMachine';
  Resources: string[];
  NotBefore: string;
  Description: string;
  EventSource: 'Platform' | 'User';
  DurationInSeconds: number;
}

export interface AzureEventsState {
  incarnation: number;
  /** Every EventId acknowledged with StartRequests, in order, and whether it was known. */
  acks: { EventId: string; known: boolean }[];
  requests: { method: string; path: string; status: number }[];
}

export interface AzureEventsControl {
  addEvent(ev: AzureEventInput): AzureEvent;
  /** The platform starts the event: EventStatus Started, NotBefore empty. */
  startEvent(eventId: string): void;
  /** The event finished: it disappears. */
  removeEvent(eventId: string): void;
  clearEvents(): void;
  setFault(fault: FaultSpec | null): void;
  state(): AzureEventsState;
}

const MIN_NOTICE_S: Record<AzureEventType, number> = { Preempt: 30, Terminate: 600, Freeze: 900, Reboot: 900, Redeploy: 600 };
const VERSIONS = ['2017-11-01', '2019-01-01', '2019-04-01', '2019-08-01', '2020-07-01'];
const EVENTS_PATH = '/metadata/scheduledevents';

/**
 * Starts a fake Azure IMDS (Scheduled Events) on 127.0.0.1 (by default a free port).
 * @example const az = await startAzureEventsServer({ vmName: 'vm-a' }); az.control.addEvent({ EventType: 'Preempt' });
 */
export async function startAzureEventsServer(opts: AzureEventsOptions = {}): Promise<FakeHandle<AzureEventsControl>> {
  const now = opts.now ?? Date.now;
  const closing = new AbortController();
  const vmName = opts.vmName ?? 'gpu-vm-0';
  let events: AzureEvent[] = [];
  let fault: FaultSpec | undefined;
  let firstCall = true;
  const state: AzureEventsState = { incarnation: 1, acks: [], requests: [] };
  const changed = (): void => {
    state.incarnation += 1;
  };
  const compute: Record<string, string> = {
    name: vmName,
    zone: opts.zone ?? '1',
    location: opts.location ?? 'westeurope',
    vmSize: opts.vmSize ?? 'Standard_NC24ads_A100_v4',
    vmId: opts.vmId ?? '02aab8a4-74ef-476e-8182-f6d2ba4166a6',
  };
  const find = (id: string): AzureEvent | undefined => events.find((e) => e.EventId.toLowerCase() === id.toLowerCase());
  const start = (e: AzureEvent): void => {
    e.EventStatus = 'Started';
    e.NotBefore = '';
  };

  const control: AzureEventsControl = {
    addEvent(input) {
      if (!(input.EventType in MIN_NOTICE_S)) throw new Error(`unknown EventType ${String(input.EventType)}`);
      const nb = input.NotBefore;
      const e: AzureEvent = {
        EventId: input.EventId ?? randomUUID().toUpperCase(),
        EventStatus: input.EventStatus ?? 'Scheduled',
        EventType: input.EventType,
        ResourceType: 'VirtualMachine',
        Resources: input.Resources ?? [vmName],
        NotBefore: typeof nb === 'string' ? nb : new Date(nb ?? now() + MIN_NOTICE_S[input.EventType] * 1000).toUTCString(),
        Description: input.Description ?? `${input.EventType} scheduled by the fake`,
        EventSource: input.EventSource ?? 'Platform',
        DurationInSeconds: input.DurationInSeconds ?? -1,
      };
      if (e.EventStatus === 'Started') e.NotBefore = '';
      events.push(e);
      changed();
      return structuredClone(e);
    },
    startEvent(id) {
      const e = find(id);
      if (!e) throw new Error(`no event ${id}`);
      start(e);
      changed();
    },
    removeEvent(id) {
      const before = events.length;
      events = events.filter((e) => e.EventId.toLowerCase() !== id.toLowerCase());
      if (events.length !== before) changed();
    },
    clearEvents() {
      if (events.length > 0) changed();
      events = [];
    },
    setFault(f) {
      fault = f ?? undefined;
    },
    state: () => structuredClone(state),
  };

  function documentFor(version: string): unknown {
    const v = VERSIONS.indexOf(version);
    return {
      DocumentIncarnation: state.incarnation,
      Events: events.map((e) => {
        const out: Record<string, unknown> = { EventId: e.EventId, EventStatus: e.EventStatus, EventType: e.EventType, ResourceType: e.ResourceType, Resources: e.Resources, NotBefore: e.NotBefore };
        // Fields arrived with later versions: Description 2019-04-01, EventSource 2019-08-01, DurationInSeconds 2020-07-01.
        if (v >= 2) out.Description = e.Description;
        if (v >= 3) out.EventSource = e.EventSource;
        if (v >= 4) out.DurationInSeconds = e.DurationInSeconds;
        return out;
      }),
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake.invalid'); // a base to parse the request's path; nothing is reached
    const path = url.pathname;
    const json = { 'Content-Type': 'application/json; charset=utf-8' };
    const reply = (status: number, body: unknown, text = false): void => {
      state.requests.push({ method: req.method ?? '', path, status });
      if (state.requests.length > 1000) state.requests.shift();
      if (text) send(req, res, status, String(body), { 'Content-Type': 'text/plain; charset=utf-8' });
      else send(req, res, status, JSON.stringify(body), json);
    };
    if (req.headers['x-forwarded-for'] !== undefined) return reply(400, { error: 'Bad request. X-Forwarded-For header is not allowed.' });
    if (req.headers.metadata !== 'true') return reply(400, { error: 'Bad request. Required metadata header not specified' });
    const version = url.searchParams.get('api-version');
    if (version === null) return reply(400, { error: 'Bad request. api-version was not specified in the request' });
    if (firstCall && opts.firstCallDelayMs) {
      firstCall = false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, opts.firstCallDelayMs);
        closing.signal.addEventListener('abort', () => { clearTimeout(t); r(); }, { once: true });
      });
    }
    firstCall = false;
    if (faultApplies(fault, path) && (await applyFault(fault, req, res, closing.signal, json))) {
      state.requests.push({ method: req.method ?? '', path, status: fault?.status ?? 200 });
      return;
    }

    if (path === EVENTS_PATH) {
      if (!VERSIONS.includes(version)) return reply(400, { error: 'Bad request. api-version is invalid', newest_versions: [...VERSIONS].reverse() });
      if (req.method === 'GET' || req.method === 'HEAD') return reply(200, documentFor(version));
      if (req.method !== 'POST') return reply(405, { error: 'Method not allowed' });
      const raw = (await readBody(req)).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        return reply(400, { error: 'Bad request. Body is not valid JSON' });
      }
      const reqs = (body as { StartRequests?: unknown } | null)?.StartRequests;
      if (!Array.isArray(reqs) || reqs.length === 0 || !reqs.every((r) => typeof (r as { EventId?: unknown } | null)?.EventId === 'string' && (r as { EventId: string }).EventId !== '')) {
        return reply(400, { error: 'Bad request. Expected {"StartRequests":[{"EventId":"..."}]}' });
      }
      let any = false;
      for (const r of reqs as { EventId: string }[]) {
        const e = find(r.EventId);
        state.acks.push({ EventId: r.EventId, known: e !== undefined });
        if (!e) continue;
        any = true;
        if (opts.ackBehaviour === 'remove') events = events.filter((x) => x !== e);
        else start(e);
      }
      if (any) changed();
      return reply(200, '', true);
    }

    const m = /^\/metadata\/instance\/compute\/([A-Za-z]+)$/.exec(path);
    if (m) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return reply(405, { error: 'Method not allowed' });
      const value = compute[m[1] as string];
      if (value === undefined) return reply(404, { error: 'Not found' });
      return url.searchParams.get('format') === 'text' ? reply(200, value, true) : reply(200, value);
    }
    if (path === '/metadata/instance/compute' || path === '/metadata/instance') {
      const c = { ...compute };
      return reply(200, path === '/metadata/instance' ? { compute: c } : c);
    }
    return reply(404, { error: 'Not found' });
  }

  return serveFake(handle, control, opts, () => closing.abort());
}
