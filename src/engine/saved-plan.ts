// The saved-plan file (`plan --out FILE`, read by `apply FILE` and `show FILE`): its format, and
// writing, recognising and reading it.
import { readFileSync, statSync } from 'node:fs';
import { SpotfleetError } from '../core/errors.js';
import { writeFileAtomic } from '../state/store.js';
import type { Plan } from './types.js';

/**
 * The saved plan's format version: bumped whenever the shape of a saved action changes (2: an
 * acquire action holds its request), so an older file is refused with a clear word, not misread.
 */
const VERSION = 2;

interface SavedPlanFile {
  format: 'spotfleet-plan';
  version: typeof VERSION;
  /** Absolute path of the fleet the plan was made from. */
  spec: string;
  plan: Plan;
}

/** What a saved plan file holds: the plan and the fleet it was made from. */
export interface SavedPlan {
  plan: Plan;
  /** Absolute path of the fleet the plan was made from. */
  spec: string;
}

/** How every saved plan file starts (savePlan writes `format` first). */
const PREFIX = '{"format":"spotfleet-plan"';

/** Saves a plan (mode 0600; it holds no secrets, but it describes the fleet). */
export function savePlan(path: string, plan: Plan, spec: string): void {
  const file: SavedPlanFile = { format: 'spotfleet-plan', version: VERSION, spec, plan };
  writeFileAtomic(path, `${JSON.stringify(file)}\n`);
}

/**
 * The saved plan at `path`, read once; undefined when `path` is not a saved plan file (a fleet
 * file or folder, or nothing), so a command taking "a plan file or a fleet" reads the file once.
 * @throws SpotfleetError PLAN_INVALID when the file starts as a saved plan but does not parse.
 */
export function readSavedPlanIfAny(path: string): SavedPlan | undefined {
  let text: string;
  try {
    if (!statSync(path).isFile()) return undefined;
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  if (!text.startsWith(PREFIX)) return undefined;
  return parseSavedPlan(text, path);
}

function parseSavedPlan(text: string, path: string): SavedPlan {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new SpotfleetError('PLAN_INVALID', `cannot read saved plan ${path}: ${(e as Error).message}`);
  }
  const f = parsed as Omit<Partial<SavedPlanFile>, 'version'> & { version?: unknown };
  if (f.format !== 'spotfleet-plan' || !f.plan || typeof f.spec !== 'string') throw new SpotfleetError('PLAN_INVALID', `${path} is not a spotfleet plan file`);
  if (f.version !== VERSION) {
    throw new SpotfleetError('PLAN_INVALID', `${path} was saved by ${typeof f.version === 'number' && f.version < VERSION ? 'an earlier' : 'another'} version of spotfleet (plan format ${String(f.version)}, this one reads ${VERSION}); run \`spotfleet plan -out\` again`);
  }
  return { plan: f.plan, spec: f.spec };
}
