// The agent leash's config sections (DESIGN §10.1–10.2): an upstream's or route's `intent`, and the
// top-level `budgets`. Cross-field checks that need the upstreams live in budget-checks.ts.
import { z } from 'zod';
import { bodyField, ROUTE_PATTERN, TOOL_PATTERN } from './fields.js';

export const intentSchema = z.strictObject({
  fields: z
    .array(bodyField)
    .min(1)
    .describe(
      'The body fields that say what a write does, e.g. [body:amount, body:currency, body:destination]; ' +
        'free text outside them (descriptions, memos) and member order never count. A missing field is a value of its own.',
    ),
  windowSec: z.number().int().positive().default(600).describe('How long an intent is remembered.'),
  keyed: z
    .enum(['guard', 'off'])
    .default('guard')
    .describe(
      'guard: a write under a new client key whose intent matches another of the window gets 409 possible_duplicate ' +
        '(unless it sends Idempotency-Intent: new) | off: only keyless writes are joined by intent.',
    ),
});

export type IntentConfig = z.output<typeof intentSchema>;

/**
 * A route pattern ("POST /v1/payments", "* /v1/*"), optionally prefixed by an upstream name:
 * "payouts:POST /v1/payouts". The pattern part is fields.ts' routePattern grammar.
 */
const budgetMatchEntry = z.string().regex(new RegExp(`^(?:[a-z0-9][a-z0-9_-]{0,62}:)?(?:${TOOL_PATTERN}|${ROUTE_PATTERN})$`), {
  error:
    'must look like "POST /v1/payments", "payouts:POST /v1/payouts" or "pay-mcp:TOOL create_payment" (an upstream name, then a pattern)',
});

/** Counters run in Redis Lua, whose numbers are doubles: exact only up to 2^53 − 1. */
const safeCount = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const budgetSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, { error: 'must be lower-case letters, digits, - or _' })
    .describe("The budget's name in refusals, metrics and admin listings (lower-case letters, digits, - or _); unique."),
  match: z
    .union([budgetMatchEntry, z.array(budgetMatchEntry).min(1)])
    .transform((m) => (typeof m === 'string' ? [m] : m))
    .describe(
      'The writes it counts: route patterns, each optionally prefixed by an upstream name ' +
        '("POST /v1/payments", "payouts:POST /v1/payouts"; unprefixed: any upstream). One string is a list of one.',
    ),
  amount: bodyField.optional().describe('A spend budget: the body field holding the amount (with limit). Omit it for a count budget.'),
  scale: z
    .number()
    .int()
    .min(0)
    .max(18)
    .default(0)
    .describe('Decimal places of the amount: "24.50" at scale 2 counts 2450; more places than scale → 400 amount_invalid.'),
  currency: z
    .strictObject({
      field: bodyField.describe('The body field holding the currency or asset, e.g. body:currency.'),
      equals: z.string().min(1).describe('The value counted, exact and case-sensitive, e.g. usd.'),
    })
    .optional()
    .describe(
      'Count only writes in this currency (amount budgets only); a write without the field is not counted, ' +
        'so pair it with a policy rule on the same field.',
    ),
  limit: safeCount
    .optional()
    .describe('With amount: the most spent (and held) per period, in minor units at scale (50000 at scale 2 is 500.00).'),
  count: safeCount.optional().describe('A count budget: the most writes per period (instead of amount and limit).'),
  period: z
    .enum(['write', 'minute', 'hour', 'day', 'week', 'month', 'total'])
    .describe(
      'UTC calendar buckets: minute | hour | day (resets 00:00 UTC) | week (ISO, from Monday) | month | total (never resets) | ' +
        'write (a per-write cap on amount, no counter).',
    ),
});

export type BudgetConfig = z.output<typeof budgetSchema>;
export type BudgetPeriod = BudgetConfig['period'];
