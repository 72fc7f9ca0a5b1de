// Rule: a workload's checkpoint contract is its own fields over `defaults.checkpoint`: it needs a
// path, a known signal and durations that parse. A workload that may run on spot without one gets
// a warning: an eviction would lose its work.
import { constants as osConstants } from 'node:os';
import { DEFAULT_CHECKPOINT } from '../defaults.js';
import type { CheckpointContract } from '../types.js';
import { checkpointExtras, isObj, str, type Located, type Obj, type ResolveContext } from './context.js';

const SPOT_CLASSES: ReadonlySet<string> = new Set(['training', 'batch', 'dev']);

export function resolveWorkloadCheckpoints(ctx: ResolveContext): void {
  const { at, err, parseDuration } = ctx;
  const defaultsLoc = ctx.defaults.loc;
  const defaultCheckpoint = ctx.defaults.checkpoint;
  for (const { l, w } of ctx.resolvedWorkloads) {
    const v = l.v;
    const name = w.name;
    const ownCp = isObj(v.checkpoint) ? v.checkpoint : undefined;
    if (ownCp || defaultCheckpoint) {
      const merged: Obj = { ...(defaultCheckpoint ?? {}), ...(ownCp ?? {}) };
      const fieldLoc = (f: string): Located =>
        ownCp && f in ownCp ? { ...l, ptr: `${l.ptr}/checkpoint`, v: ownCp } : { ...defaultsLoc, ptr: `${defaultsLoc.ptr}/checkpoint`, v: defaultCheckpoint ?? {} };
      const path = str(merged.path);
      if (path === undefined) {
        err(ownCp ? at(l, '/checkpoint') : at(defaultsLoc, '/checkpoint'), `workload "${name}" has a checkpoint contract without a path`, 'checkpoint.path: where the workload writes checkpoints', 'checkpoint', `${l.ptr}/checkpoint`);
      }
      const signal = str(merged.signal) ?? DEFAULT_CHECKPOINT.signal;
      if (!(signal in osConstants.signals)) {
        const fl = fieldLoc('signal');
        err(at(fl, '/signal'), `unknown signal "${signal}"`, 'a POSIX signal name such as SIGUSR1 or SIGTERM', 'checkpoint', `${fl.ptr}/signal`);
      }
      const cp: CheckpointContract = {
        path: path ?? '',
        signal,
        // fieldLoc only when the text does not parse: it is there to place the error
        stopGraceMs: (typeof merged.stopGrace === 'string' ? parseDuration(merged.stopGrace) ?? ctx.duration(fieldLoc('stopGrace'), '/stopGrace') : undefined) ?? (parseDuration(DEFAULT_CHECKPOINT.stopGrace) as number),
        resumeEnv: str(merged.resumeEnv) ?? DEFAULT_CHECKPOINT.resumeEnv,
      };
      if (typeof merged.maxAge === 'string') {
        const ms = parseDuration(merged.maxAge) ?? ctx.duration(fieldLoc('maxAge'), '/maxAge');
        if (ms !== undefined) cp.maxAgeMs = ms;
      }
      checkpointExtras(merged, cp);
      w.checkpoint = cp;
    } else if (SPOT_CLASSES.has(w.class) && w.capacity !== 'on-demand') {
      ctx.warn(at(l, '/name'), `workload "${name}" may run on spot (class ${w.class}, capacity ${w.capacity}) but has no checkpoint contract; an eviction loses its work`, 'checkpoint: { path, signal, stopGrace } on the workload or in defaults.checkpoint, or capacity: on-demand', 'checkpoint-missing', l.ptr);
    }
  }
}
