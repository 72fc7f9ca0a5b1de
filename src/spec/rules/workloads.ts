// Rule: each workload (without schema errors) resolves over the defaults: it has an image or a
// command; its fallback, durations and deadline parse (a deadline in the past is an error); its
// restart policy follows its class. The later workload rules add the checkpoint contract, the
// migration overhead, and check that it fits a pool.
import type { CapacityPreference, WorkloadClass } from '../../core/types.js';
import { DEFAULT_BACKOFF_LIMIT, DEFAULT_FALLBACK } from '../defaults.js';
import type { FallbackRule, RestartPolicy, WorkloadSpec } from '../types.js';
import { argv, isObj, str, strMap, type Obj, type ResolveContext } from './context.js';

const DEADLINE_RE = /^\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2}))?$/;

export function resolveWorkloads(ctx: ResolveContext): void {
  const { at, err } = ctx;
  const defaults = ctx.defaults;
  for (const l of ctx.lists.workloads) {
    const v = l.v;
    const name = str(v.name);
    if (l.bad || name === undefined) continue;

    const image = str(v.image);
    const command = argv(v.command);
    if (image === undefined && command === undefined) {
      err(at(l, '/name'), `workload "${name}" has neither image nor command`, 'image: (a container image) or command: (argv for the local runtime)', 'required', l.ptr);
    }
    const gpus = typeof v.gpus === 'number' ? v.gpus : 1;
    const cls = (str(v.class) ?? 'training') as WorkloadClass;
    const capacity = (str(v.capacity) ?? 'auto') as CapacityPreference;
    const fb = isObj(v.fallback) ? v.fallback : undefined;
    const fallbackSrc = { ...DEFAULT_FALLBACK, ...defaults.fallback, ...(fb ?? {}) } as Obj;
    const minDwellMs = fb && typeof fb.minDwell === 'string' ? ctx.duration(l, '/fallback/minDwell') : ctx.parseDuration(String(fallbackSrc.minDwell));
    const fallback: FallbackRule = {
      to: String(fallbackSrc.to),
      revertToSpot: fallbackSrc.revertToSpot !== false,
      minDwellMs: minDwellMs ?? (ctx.parseDuration(DEFAULT_FALLBACK.minDwell) as number),
    };
    const w: WorkloadSpec = {
      name,
      env: strMap(v.env),
      gpus,
      class: cls,
      capacity,
      fallback,
      labels: strMap(v.labels),
      critical: v.critical === true,
      restartPolicy: (str(v.restartPolicy) as RestartPolicy | undefined) ?? (cls === 'serving' || cls === 'realtime' ? 'Always' : 'OnFailure'),
      backoffLimit: typeof v.backoffLimit === 'number' ? v.backoffLimit : DEFAULT_BACKOFF_LIMIT,
      specHash: '',
      pos: at(l),
    };
    if (image !== undefined) w.image = image;
    if (command !== undefined) w.command = command;
    if (defaults.passEnv.length > 0 || Array.isArray(v.passEnv)) {
      const own = Array.isArray(v.passEnv) ? v.passEnv.filter((x): x is string => typeof x === 'string') : [];
      w.passEnv = [...new Set([...defaults.passEnv, ...own])].sort();
    }
    if (typeof v.gpuModel === 'string') w.gpuModel = v.gpuModel;
    const exp = ctx.duration(l, '/expectedDuration');
    if (exp !== undefined) w.expectedDurationMs = exp;
    if (typeof v.deadline === 'string') {
      const d = v.deadline;
      const t = DEADLINE_RE.test(d.trim()) ? Date.parse(d.trim()) : NaN;
      if (Number.isNaN(t)) {
        err(at(l, '/deadline'), `deadline is not a time: "${d}"`, 'an ISO-8601 time such as 2026-12-01T00:00:00Z', 'deadline', `${l.ptr}/deadline`);
      } else if (t < ctx.input.now) {
        err(at(l, '/deadline'), `deadline ${d} is in the past`, 'a time in the future', 'deadline', `${l.ptr}/deadline`);
      } else {
        w.deadline = new Date(t).toISOString();
      }
    }
    if (Array.isArray(v.pools)) w.pools = v.pools.filter((x): x is string => typeof x === 'string');
    ctx.resolvedWorkloads.push({ l, w, unknownPool: ctx.unknownPoolRefs.has(l) });
  }
}
