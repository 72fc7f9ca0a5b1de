// Rule: `budgetPerHour` is an amount of money.
import { parseMoney } from '../../core/units.js';
import type { ResolveContext } from './context.js';

export function resolveBudget(ctx: ResolveContext): void {
  const budget = ctx.singles.get('budgetPerHour');
  if (!budget || budget.bad) return;
  const usd = parseMoney(budget.value);
  if (usd === undefined) ctx.err(ctx.at(budget), `budgetPerHour is not an amount of money: ${JSON.stringify(budget.value)}`, 'USD per hour', 'money', '/budgetPerHour');
  else ctx.out.budgetPerHour = usd;
}
