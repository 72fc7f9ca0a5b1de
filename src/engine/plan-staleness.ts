// The staleness check of a saved plan: it is applied only to the exact state (lineage, serial),
// spec and fleet it was made against, as Terraform refuses a stale `-out` plan.
import { StalePlanError } from '../core/errors.js';
import type { StateFile } from '../state/types.js';
import { specHashOf } from './plan.js';
import type { FleetSession } from './session.js';
import type { Plan } from './types.js';

/** A saved plan may only be applied to the exact state and spec it was made against. */
export function assertPlanFresh(plan: Plan, state: StateFile, session: FleetSession): void {
  if (plan.state.lineage !== state.lineage) throw new StalePlanError(`it was made for state lineage ${plan.state.lineage}, but the state now has lineage ${state.lineage}`);
  if (plan.state.serial !== state.serial) throw new StalePlanError(`the state changed since the plan was made (serial ${plan.state.serial} → ${state.serial})`);
  if (plan.specHash !== specHashOf(session.fleet)) throw new StalePlanError('the fleet spec changed since the plan was made');
  if (plan.fleet !== session.fleet.name) throw new StalePlanError(`it is for fleet "${plan.fleet}", not "${session.fleet.name}"`);
}
