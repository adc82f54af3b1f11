// What operators see of the budgets (DESIGN §10.2): per agent, budget and current period — limit,
// spent, held (reserved by writes in flight or unknown) and left. Shared by the admin route and
// `writeguard budgets show`.
import type { BudgetConfig } from '../config/leash-schema.js';
import { bucketOf } from '../leash/budgets.js';
import type { Store } from '../store/store.js';

export interface BudgetRow {
  agent: string;
  budget: string;
  period: BudgetConfig['period'];
  /** The current period's bucket, e.g. d2026-12-07. */
  bucket: string;
  /** `minor units` at `scale` places, or `writes`. */
  unit: 'minor units' | 'writes';
  scale: number | null;
  limit: number;
  spent: number;
  held: number;
  left: number;
  /** ISO time the period resets; null for `total`. */
  reset: string | null;
}

/**
 * The current period of every budget with a counter: of one agent (every budget, zeros where
 * nothing was spent yet), or of every agent that has one. Per-write caps (`write`) hold no counter.
 */
export async function budgetReport(
  store: Store,
  config: { namespace: string; budgets: readonly BudgetConfig[] },
  agent: string | null,
  nowMs: number,
): Promise<BudgetRow[]> {
  const current = config.budgets.flatMap((budget) => {
    if (budget.period === 'write') return [];
    const { id, resetAt } = bucketOf(budget.period, nowMs);
    return [{ budget, bucket: `${budget.name}:${id}`, id, resetAt }];
  });
  if (current.length === 0) return [];
  const scopePrefix = `${config.namespace}:`;
  const counters = await store.budgetCounters({
    scope: agent === null ? null : scopePrefix + agent,
    scopePrefix,
    buckets: current.map((c) => c.bucket),
  });
  const agents = agent === null ? [...new Set(counters.map((c) => c.scope.slice(scopePrefix.length)))].sort() : [agent];
  return agents.flatMap((name) =>
    current.map(({ budget, bucket, id, resetAt }): BudgetRow => {
      const counter = counters.find((c) => c.scope === scopePrefix + name && c.bucket === bucket);
      const used = counter?.used ?? 0;
      const held = counter?.held ?? 0;
      const limit = budget.count ?? budget.limit ?? 0;
      return {
        agent: name,
        budget: budget.name,
        period: budget.period,
        bucket: id,
        unit: budget.count === undefined ? 'minor units' : 'writes',
        scale: budget.count === undefined ? budget.scale : null,
        limit,
        spent: used - held,
        held,
        left: Math.max(0, limit - used),
        reset: resetAt === null ? null : new Date(resetAt).toISOString(),
      };
    }),
  );
}
