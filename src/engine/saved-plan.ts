// The saved-plan file (`plan --out FILE`, read by `apply FILE` and `show FILE`): its format, and
// writing, recognising and reading it.
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { SpotfleetError } from '../core/errors.js';
import { writeFileAtomic } from '../state/store.js';
import type { Plan } from './types.js';

interface SavedPlanFile {
  format: 'spotfleet-plan';
  version: 1;
  /** Absolute path of the fleet the plan was made from. */
  spec: string;
  plan: Plan;
}

/** Saves a plan (mode 0600; it holds no secrets, but it describes the fleet). */
export function savePlan(path: string, plan: Plan, spec: string): void {
  const file: SavedPlanFile = { format: 'spotfleet-plan', version: 1, spec, plan };
  writeFileAtomic(path, `${JSON.stringify(file)}\n`);
}

/** True when the file at path is a saved plan (rather than a fleet spec). */
export function isSavedPlanFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    const fd = openSync(path, 'r');
    const buf = Buffer.alloc(64);
    readSync(fd, buf, 0, 64, 0);
    closeSync(fd);
    return buf.toString('utf8').startsWith('{"format":"spotfleet-plan"');
  } catch {
    return false;
  }
}

export function readSavedPlanFile(path: string): { plan: Plan; spec: string } {
  const plan = readSavedPlan(path);
  const f = JSON.parse(readFileSync(path, 'utf8')) as SavedPlanFile;
  return { plan, spec: f.spec };
}

export function readSavedPlan(path: string): Plan {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new SpotfleetError('PLAN_INVALID', `cannot read saved plan ${path}: ${(e as Error).message}`);
  }
  const f = parsed as Partial<SavedPlanFile>;
  if (f.format !== 'spotfleet-plan' || f.version !== 1 || !f.plan) throw new SpotfleetError('PLAN_INVALID', `${path} is not a spotfleet plan file`);
  return f.plan;
}
