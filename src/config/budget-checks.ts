// The checks on `budgets` that one budget's schema cannot make alone: unique names, which of count,
// amount and limit go together, and whether each match entry can ever count a write (DESIGN §10.2).
import type { z } from 'zod';
import type { BudgetConfig } from './leash-schema.js';
import { splitUpstream } from './route-pattern.js';
import type { upstreamSchema } from './upstream-schema.js';

type Upstream = z.output<typeof upstreamSchema>;

export interface BudgetIssue {
  /** Under the config's root: ['budgets', 0, 'limit']. */
  path: Array<string | number>;
  message: string;
}

/** Every problem of `budgets`, each at the field to change. */
export function budgetIssues(budgets: readonly BudgetConfig[], upstreams: readonly Upstream[]): BudgetIssue[] {
  const issues: BudgetIssue[] = [];
  const seen = new Set<string>();
  budgets.forEach((b, i) => {
    const at = (...rest: Array<string | number>): Array<string | number> => ['budgets', i, ...rest];
    if (seen.has(b.name)) issues.push({ path: at('name'), message: `duplicate budget name "${b.name}"` });
    seen.add(b.name);
    for (const [field, message] of kindIssues(b)) issues.push({ path: at(field), message });
    b.match.forEach((entry, j) => {
      const message = matchIssue(entry, upstreams);
      if (message !== null) issues.push({ path: at('match', j), message });
    });
  });
  return issues;
}

/** A budget counts writes (count) or spends (amount with limit), never both; the rest follows from that. */
function kindIssues(b: BudgetConfig): Array<[string, string]> {
  const issues: Array<[string, string]> = [];
  const hasAmount = b.amount !== undefined;
  if (b.count !== undefined && hasAmount)
    issues.push(['count', 'use either count (writes per period) or amount with limit (spend per period), not both']);
  else if (b.count !== undefined && b.limit !== undefined)
    issues.push(['limit', 'a count budget has no limit: count is its limit (or use amount with limit for a spend budget)']);
  else if (hasAmount && b.limit === undefined) issues.push(['limit', `an amount budget needs a limit, in minor units at scale ${b.scale}`]);
  else if (!hasAmount && b.limit !== undefined)
    issues.push(['amount', 'limit needs amount: the body field whose value is spent, e.g. body:amount']);
  else if (!hasAmount && b.count === undefined)
    issues.push(['count', 'a budget needs count (writes per period) or amount with limit (spend per period)']);
  if (b.currency !== undefined && !hasAmount)
    issues.push(['currency', 'currency filters a spend: it needs amount (and limit); a count budget counts every matching write']);
  if (b.period === 'write' && !hasAmount)
    issues.push([
      'period',
      'period write is a per-write cap on an amount: it needs amount and limit (a count of 1 write per write means nothing)',
    ]);
  return issues;
}

/**
 * Why a match entry could never count a write, or null. It must name a configured upstream (when
 * prefixed) and, on at least one upstream it applies to, be a protected write: its method `*` or
 * one the upstream treats as a write, and not exactly a passthrough route (never claimed, so never
 * charged). Route-level `methods` overrides count as that upstream's writes too.
 */
function matchIssue(entry: string, upstreams: readonly Upstream[]): string | null {
  const { upstream, pattern } = splitUpstream(entry);
  const candidates = upstream === null ? upstreams : upstreams.filter((u) => u.name === upstream);
  if (candidates.length === 0) return `"${upstream}" is not a configured upstream (${upstreams.map((u) => u.name).join(', ')})`;
  if (pattern.startsWith('TOOL ')) return toolIssue(pattern.slice('TOOL '.length), candidates);
  const method = pattern.slice(0, pattern.indexOf(' '));
  const writesOn = (u: Upstream): boolean =>
    method === '*' || isWrite(u.idempotency.methods, method) || u.routes.some((r) => isWrite(r.idempotency.methods ?? [], method));
  const passthroughOn = (u: Upstream): boolean => u.routes.some((r) => r.mode === 'passthrough' && r.match === pattern);
  if (candidates.some((u) => writesOn(u) && !passthroughOn(u))) return null;
  if (!candidates.some(writesOn)) {
    const where = upstream === null ? 'any upstream' : `upstream ${upstream}`;
    return `${method} is not a write on ${where} (idempotency.methods), so nothing would be counted`;
  }
  const where = upstream === null ? `every upstream where ${method} is a write` : `upstream ${upstream}`;
  return `"${pattern}" is a passthrough route on ${where}: its writes are never claimed, so they cannot be budgeted`;
}

/** A "TOOL name" entry must name a protected tool of an MCP upstream it applies to. */
function toolIssue(tool: string, candidates: readonly Upstream[]): string | null {
  const mcp = candidates.filter((u) => u.mcp !== null);
  if (mcp.length === 0) return 'TOOL entries count MCP tool calls, and no upstream it applies to has mcp.tools';
  if (tool === '*' || mcp.some((u) => Object.hasOwn(u.mcp!.tools, tool))) return null;
  return `"${tool}" is not a protected tool (mcp.tools) of ${mcp.map((u) => u.name).join(', ')}: its calls are never claimed, so never counted`;
}

const isWrite = (methods: readonly string[], method: string): boolean => methods.includes(method);
