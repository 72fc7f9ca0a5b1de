// The policy gate: a plan with a mandatory policy violation (on a change, or on the whole plan) is
// not applied. Advisory violations only show in the plan.
import { PolicyViolation } from '../core/errors.js';
import type { Plan } from './types.js';

/** Mandatory policy violations block apply. */
export function assertNoMandatoryViolations(plan: Plan): void {
  const v = plan.changes.flatMap((c) => c.violations.filter((x) => x.level === 'mandatory').map((x) => ({ policy: x.policy, address: c.address, message: x.message })));
  for (const x of plan.policyViolations ?? []) if (x.level === 'mandatory') v.push({ policy: x.policy, address: `fleet.${plan.fleet}`, message: x.message });
  if (v.length > 0) throw new PolicyViolation(v);
}
