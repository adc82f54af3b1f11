// What the last attempt of a protected write proves, given what earlier attempts may have done. Pure.
import type { IdempotencyConfig } from '../config/schema.js';
import type { AttemptResult } from '../http/attempt.js';
import { classifyWriteStatus } from '../retry/classify.js';

type Rules = Pick<IdempotencyConfig, 'notExecutedStatuses' | 'upstreamHonorsKey'>;

export type WriteOutcome =
  /** The answer is the write's result (it ran, or was refused for good): store it. */
  | { kind: 'completed' }
  /** Proof that nothing ran, in this attempt and every earlier one: the key is free again. */
  | { kind: 'released' }
  /** It may have run: held as `outcome_unknown` until reconciled. */
  | { kind: 'unknown'; reason: string };

/**
 * Whether an attempt's result leaves the write possibly executed with no answer to show for it:
 * no answer after sending, or an ambiguous status (408, 425, 5xx…).
 */
export function isAmbiguous(result: AttemptResult, rules: Rules): boolean {
  if (result.kind === 'not_sent' || (result.kind === 'answer' && result.refused === true)) return false;
  if (result.kind === 'no_answer') return true;
  return classifyWriteStatus(result.status, rules) === 'ambiguous';
}

/** Why an ambiguous result is ambiguous, for the record and the dead-letter list. */
export function ambiguityReason(result: AttemptResult): string {
  if (result.kind === 'answer') return `status ${result.status}`;
  return result.reason;
}

/**
 * The record's end. `earlier`: why an earlier attempt of this record (in this request, or in an
 * epoch before a reclaim) may have run, or null if none may have. Once something may have run, a
 * later "nothing ran" answer (429, 401, a refused connection) proves nothing about it: the record
 * is never released then, and the agent is never told that nothing ran.
 */
export function decideOutcome(result: AttemptResult, rules: Rules, earlier: string | null): WriteOutcome {
  if (isAmbiguous(result, rules)) return { kind: 'unknown', reason: ambiguityReason(result) };
  if (result.kind === 'answer' && result.refused !== true && classifyWriteStatus(result.status, rules) === 'definitive')
    return { kind: 'completed' };
  return earlier === null ? { kind: 'released' } : { kind: 'unknown', reason: `${earlier}, then ${ambiguityReason(result)}` };
}

/**
 * Whether writeguard may send the write again: only what cannot duplicate it — answers proving it
 * did not run (never a 401: the same credential gets the same refusal), or, when the upstream
 * dedupes on the key, ambiguous ones.
 */
export function writeRetryable(result: AttemptResult, rules: Rules): boolean {
  if (result.kind === 'not_sent') return true;
  if (result.kind === 'no_answer') return rules.upstreamHonorsKey;
  // Refused as such, the same request is refused again.
  if (result.status === 401 || result.refused === true) return false;
  const verdict = classifyWriteStatus(result.status, rules);
  return verdict === 'not_executed' || (verdict === 'ambiguous' && rules.upstreamHonorsKey);
}
