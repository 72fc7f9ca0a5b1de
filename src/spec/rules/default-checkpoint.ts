// Rule: `defaults.checkpoint` resolved on its own, as the fleet's default contract (what a workload
// without its own fields gets); its stopGrace must parse.
import { DEFAULT_CHECKPOINT } from '../defaults.js';
import type { CheckpointContract } from '../types.js';
import { checkpointExtras, str, type ResolveContext } from './context.js';

export function resolveDefaultCheckpoint(ctx: ResolveContext): void {
  const { parseDuration } = ctx;
  const dc = ctx.defaults.checkpoint;
  const defaultsLoc = ctx.defaults.loc;
  if (!dc || !ctx.defaults.ok) return;
  const cp: CheckpointContract = {
    path: str(dc.path) ?? '',
    signal: str(dc.signal) ?? DEFAULT_CHECKPOINT.signal,
    stopGraceMs: parseDuration(str(dc.stopGrace) ?? DEFAULT_CHECKPOINT.stopGrace) ?? (parseDuration(DEFAULT_CHECKPOINT.stopGrace) as number),
    resumeEnv: str(dc.resumeEnv) ?? DEFAULT_CHECKPOINT.resumeEnv,
  };
  const ma = typeof dc.maxAge === 'string' ? parseDuration(dc.maxAge) : undefined;
  if (ma !== undefined) cp.maxAgeMs = ma;
  checkpointExtras(dc, cp);
  ctx.out.defaultCheckpoint = cp;
  if (typeof dc.stopGrace === 'string') ctx.duration({ ...defaultsLoc, ptr: `${defaultsLoc.ptr}/checkpoint`, v: dc }, '/stopGrace');
}
