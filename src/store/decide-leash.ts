// The agent leash's part of the state table (DESIGN §10.1–10.2), pure: whether a new record may be
// created (its intent free, its charges within their budgets), and what a record's change does to
// its holds and intent. The memory store applies it; the Lua scripts mirror it.
import type { BeginInput, BeginResult, Hold, IdemRecord, IntentHolder, Leash } from './store.js';

/** The intent index entry: the record holding it (`member`: its id in the store) and what a refusal names. */
export interface IntentEntry {
  member: string;
  holder: IntentHolder;
}

/**
 * A refusal for a begin that would create a record, or null when it may: another operation holds
 * its intent (`guard`), or a charge does not fit what its budget has left. A write is refused whole,
 * never shrunk; the intent is checked first, so a duplicate is not reported as over budget.
 */
export function decideAdmission(
  input: Pick<BeginInput, 'intent' | 'charges'>,
  member: string,
  intent: IntentEntry | null,
  used: (bucket: string) => number,
): Exclude<BeginResult, { record: IdemRecord }> | null {
  if (input.intent?.mode === 'guard' && intent !== null && intent.member !== member)
    return { outcome: 'intent_duplicate', holder: intent.holder };
  for (const charge of input.charges) {
    const spent = used(charge.bucket);
    // Compared as `amount > limit - used`: both sides stay below 2^53, so doubles compare exactly.
    if (charge.amount > charge.limit - spent)
      return {
        outcome: 'limit_exceeded',
        refusal: { bucket: charge.bucket, limit: charge.limit, used: spent, amount: charge.amount, resetAt: charge.resetAt },
      };
  }
  return null;
}

/** The leash a record created by this begin carries. */
export function leashOf(input: Pick<BeginInput, 'intent' | 'charges'>): Leash {
  return { intent: input.intent?.hash ?? null, holds: input.charges.map(({ bucket, amount }): Hold => ({ bucket, amount })) };
}

/**
 * What a record's change does to its leash. `spend`: the write ran (or may have: a stored 5xx);
 * `release`: proof nothing moved (the record was given back, or the upstream refused it with a 4xx)
 * — the holds are returned and the intent freed; `keep`: still in flight or unknown.
 */
export type LeashFate = 'keep' | 'spend' | 'release';

/** `after`: the record as the change leaves it, null when it is deleted. */
export function leashFate(before: IdemRecord | null, after: IdemRecord | null): LeashFate {
  if (before === null || before.state === 'completed') return 'keep';
  if (after === null) return 'release';
  // A person denied it, or nobody decided in time: nothing was sent.
  if (before.approval?.state === 'pending' && (after.approval?.state === 'denied' || after.approval?.state === 'expired')) return 'release';
  if (after.state !== 'completed') return 'keep';
  const status = after.status ?? 0;
  return status >= 400 && status < 500 ? 'release' : 'spend';
}
