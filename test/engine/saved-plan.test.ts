// The saved-plan file: `apply PLANFILE` and `show PLANFILE` read it once through readSavedPlanIfAny,
// which tells a saved plan from a fleet path and refuses a file that only looks like one.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSavedPlanIfAny, savePlan } from '../../src/engine/saved-plan.js';
import type { Plan } from '../../src/engine/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'spotfleet-saved-plan-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('readSavedPlanIfAny', () => {
  it('reads back what savePlan wrote, with the fleet it was made from', () => {
    const plan = { fleet: 'f', actions: [], changes: [] } as unknown as Plan;
    const file = join(tmp, 'plan.out');
    savePlan(file, plan, '/fleets/f');
    expect(readSavedPlanIfAny(file)).toEqual({ plan, spec: '/fleets/f' });
  });

  it('is undefined for a fleet file, a folder or nothing, so the argument is taken as a fleet path', () => {
    const spec = join(tmp, 'fleet.yaml');
    writeFileSync(spec, 'apiVersion: spotfleet.dev/v1\nkind: Fleet\n');
    mkdirSync(join(tmp, 'folder'));
    expect(readSavedPlanIfAny(spec)).toBeUndefined();
    expect(readSavedPlanIfAny(join(tmp, 'folder'))).toBeUndefined();
    expect(readSavedPlanIfAny(join(tmp, 'missing'))).toBeUndefined();
  });

  it('refuses a file that starts as a saved plan but is not one', () => {
    const broken = join(tmp, 'broken.out');
    writeFileSync(broken, '{"format":"spotfleet-plan","version":1,"plan":');
    expect(() => readSavedPlanIfAny(broken)).toThrow(/cannot read saved plan/);
    const noSpec = join(tmp, 'nospec.out');
    writeFileSync(noSpec, '{"format":"spotfleet-plan","version":1,"plan":{}}');
    expect(() => readSavedPlanIfAny(noSpec)).toThrow(/not a spotfleet plan file/);
  });

  it('refuses a plan an earlier spotfleet saved (its actions have another shape), saying to plan again', () => {
    const old = join(tmp, 'old.out');
    writeFileSync(old, '{"format":"spotfleet-plan","version":1,"spec":"/fleets/f","plan":{"fleet":"f","actions":[],"changes":[]}}');
    expect(() => readSavedPlanIfAny(old)).toThrow(/was saved by an earlier version of spotfleet \(plan format 1, this one reads 2\); run `spotfleet plan -out` again/);
  });
});
