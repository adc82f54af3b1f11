// Which budgets a write counts against, in which period bucket, for how much (DESIGN §10.2), and
// the refusal an agent reads when one is spent. Pure: the store checks and reserves the charges.
import type { BudgetConfig, BudgetPeriod } from '../config/leash-schema.js';
import { matchesWrite, splitUpstream } from '../config/route-pattern.js';
import { WriteguardError } from '../errors.js';
import { readText } from '../observe/json-body.js';
import type { Charge, LimitRefusal } from '../store/store.js';
import { writeAmount } from './amount.js';

/** The periods with a counter; `write` is a per-write cap checked in chargesFor, and has no bucket. */
export type BucketPeriod = Exclude<BudgetPeriod, 'write'>;

export interface BudgetRequest {
  upstream: string;
  method: string;
  /** Path and query as the API documents them. */
  apiPath: string;
  /** The body as parseLossless returned it (undefined when it is not JSON: every field is missing). */
  json: unknown;
  /** The tool of an MCP tool call (matched by "TOOL name" entries), else null. */
  tool: string | null;
}

/** The budgets that can apply to this upstream's writes: one entry unprefixed or naming it. Called once per upstream. */
export function budgetsFor(budgets: readonly BudgetConfig[], upstream: string): BudgetConfig[] {
  return budgets.filter((b) =>
    b.match.some((entry) => {
      const named = splitUpstream(entry).upstream;
      return named === null || named === upstream;
    }),
  );
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
const DAY_MS = 86_400_000;

/**
 * The UTC calendar bucket holding `nowMs`: a readable id (no spaces: ids go into store keys and
 * space-separated lists) and when the next bucket starts (null for `total`, which never resets).
 * minute m2026-12-07T13:05 · hour h2026-12-07T13 · day d2026-12-07 · week w2026-W49 (ISO 8601:
 * Monday start, the week-year of its Thursday) · month M2026-12 · total.
 * @throws Error for `write` (no counter): a programming error.
 */
export function bucketOf(period: BucketPeriod, nowMs: number): { id: string; resetAt: number | null } {
  const d = new Date(nowMs);
  const [y, mo, day, h, mi] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes()];
  const date = `${pad(y, 4)}-${pad(mo + 1)}-${pad(day)}`;
  switch (period) {
    case 'minute':
      return { id: `m${date}T${pad(h)}:${pad(mi)}`, resetAt: Date.UTC(y, mo, day, h, mi + 1) };
    case 'hour':
      return { id: `h${date}T${pad(h)}`, resetAt: Date.UTC(y, mo, day, h + 1) };
    case 'day':
      return { id: `d${date}`, resetAt: Date.UTC(y, mo, day + 1) };
    case 'week':
      return isoWeek(Date.UTC(y, mo, day));
    case 'month':
      return { id: `M${pad(y, 4)}-${pad(mo + 1)}`, resetAt: Date.UTC(y, mo + 1, 1) };
    case 'total':
      return { id: 'total', resetAt: null };
  }
  throw new Error(`bucketOf: period ${String(period)} has no bucket`);
}

/** ISO week of the UTC day starting at `dayMs`: its week-year is its Thursday's year (2027-01-01 is 2026-W53). */
function isoWeek(dayMs: number): { id: string; resetAt: number } {
  const sinceMonday = (new Date(dayMs).getUTCDay() + 6) % 7;
  const monday = dayMs - sinceMonday * DAY_MS;
  const weekYear = new Date(monday + 3 * DAY_MS).getUTCFullYear();
  // Week 1 holds the year's first Thursday, so its Monday is Jan 4's Monday.
  const jan4 = Date.UTC(weekYear, 0, 4);
  const week1 = jan4 - ((new Date(jan4).getUTCDay() + 6) % 7) * DAY_MS;
  const week = 1 + Math.round((monday - week1) / (7 * DAY_MS));
  return { id: `w${pad(weekYear, 4)}-W${pad(week)}`, resetAt: monday + 7 * DAY_MS };
}

/**
 * The charges this write must fit in, one per budget it falls under, each on the bucket of `nowMs`.
 * A budget applies when a match entry matches (its upstream prefix, if any, naming req.upstream)
 * and, with `currency`, the field's text equals `equals` exactly. A write without the currency
 * field is not counted at all: pair such a budget with a policy rule on that field.
 * @throws WriteguardError amount_invalid (400) when an applying budget's amount is missing or
 *   malformed; limit_exceeded (403) when it exceeds a per-write (`period: write`) limit.
 */
export function chargesFor(budgets: readonly BudgetConfig[], req: BudgetRequest, nowMs: number): Charge[] {
  const charges: Charge[] = [];
  const path = req.apiPath.split('?')[0]!;
  for (const budget of budgets) {
    if (!applies(budget, req)) continue;
    if (budget.count !== undefined) {
      if (budget.period === 'write') continue; // config refuses this; never count a write cap as a counter
      const { id, resetAt } = bucketOf(budget.period, nowMs);
      charges.push({ bucket: `${budget.name}:${id}`, amount: 1, limit: budget.count, resetAt });
      continue;
    }
    if (budget.amount === undefined || budget.limit === undefined) continue; // config refuses both
    const amount = amountOf(budget, budget.amount, req, path);
    if (budget.period === 'write') {
      if (amount > budget.limit) {
        const refusal = { budget: budget.name, limit: budget.limit, used: 0, amount, resetAt: null };
        throw limitExceeded({ ...refusal, method: req.method, path, scale: budget.scale, perWrite: true });
      }
      continue;
    }
    const { id, resetAt } = bucketOf(budget.period, nowMs);
    charges.push({ bucket: `${budget.name}:${id}`, amount, limit: budget.limit, resetAt });
  }
  return charges;
}

function applies(budget: BudgetConfig, req: BudgetRequest): boolean {
  const matched = budget.match.some((entry) => {
    const { upstream, pattern } = splitUpstream(entry);
    return (upstream === null || upstream === req.upstream) && matchesWrite(pattern, req.method, req.apiPath, req.tool);
  });
  if (!matched) return false;
  return budget.currency === undefined || readText(req.json, budget.currency.field.slice('body:'.length)) === budget.currency.equals;
}

function amountOf(budget: BudgetConfig, field: string, req: BudgetRequest, path: string): number {
  return writeAmount(req.json, field, budget.scale, { method: req.method, path }, `budget ${budget.name}`);
}

export interface LimitExceededInput {
  budget: string;
  /** Minor units, or writes for a count budget. */
  limit: number;
  /** Spent and held in the bucket before this write. */
  used: number;
  amount: number;
  resetAt: number | null;
  method: string;
  /** Without its query. */
  path: string;
  /** A count budget: the detail reads in writes (default: an amount budget). */
  count?: boolean;
  /** The amount's decimal places: the detail shows amounts as the agent sends them (default 0). */
  scale?: number;
  /** A `period: write` cap: nothing is used or reset, the write alone is too large. */
  perWrite?: boolean;
}

/**
 * 403 limit_exceeded, with members `budget`, `limit` and `left` (minor units, or writes) and `reset`
 * (ISO time, null when it never resets). The detail tells an LLM what happened and not to retry.
 */
export function limitExceeded(r: LimitExceededInput): WriteguardError {
  const left = Math.max(0, r.limit - r.used);
  const reset = r.resetAt === null ? null : new Date(r.resetAt).toISOString();
  const show = (minor: number): string =>
    r.count === true ? `${minor} ${minor === 1 ? 'write' : 'writes'}` : decimal(minor, r.scale ?? 0);
  const what = r.count === true ? '' : ` for ${show(r.amount)}`;
  let state: string;
  if (r.perWrite === true) state = `at most ${show(r.limit)} per write`;
  else state = `limit ${show(r.limit)}, ${show(left)} left ${reset === null ? '(it never resets)' : `until ${reset}`}`;
  const advice =
    r.count === true
      ? `Do not retry it${reset === null ? '' : ' before then'}: ask an operator to raise the limit if more writes are needed.`
      : 'Do not retry it: a smaller write may fit, or ask an operator to raise the limit.';
  return new WriteguardError(
    'limit_exceeded',
    `this ${r.method} ${r.path}${what} would exceed budget ${r.budget}: ${state}. Nothing was sent. ${advice}`,
    { extensions: { budget: r.budget, limit: r.limit, left, reset, amount: r.amount } },
  );
}

/** The refusal of the store's begin as limitExceeded, worded after the budget it names. */
export function limitRefused(budgets: readonly BudgetConfig[], refusal: LimitRefusal, method: string, apiPath: string): WriteguardError {
  const name = budgetNameOf(refusal.bucket);
  const budget = budgets.find((b) => b.name === name);
  const path = apiPath.split('?')[0]!;
  return limitExceeded({ ...refusal, budget: name, method, path, count: budget?.count !== undefined, scale: budget?.scale ?? 0 });
}

/** `daily-usd:d2026-12-07` → `daily-usd` (budget names have no `:`). */
export function budgetNameOf(bucket: string): string {
  const colon = bucket.indexOf(':');
  return colon === -1 ? bucket : bucket.slice(0, colon);
}

/** Minor units as the decimal the agent sends, by string work (never a float): 2450 at scale 2 → "24.50". */
function decimal(minor: number, scale: number): string {
  if (scale === 0) return String(minor);
  const digits = String(minor).padStart(scale + 1, '0');
  return `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}
