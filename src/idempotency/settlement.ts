// How a protected write ends, from its last attempt: what the record becomes, what the agent gets,
// and what the response line says. Pure: the guard runs the finish step it names.
import type { IdempotencyConfig, UpstreamConfig } from '../config/schema.js';
import { WriteguardError } from '../errors.js';
import { attemptFailureError, type Answer, type AttemptResult } from '../http/attempt.js';
import { extractAnswer, type Extracted } from '../observe/extract.js';
import { retryAfterSeconds } from '../retry/delay.js';
import type { LoopResult } from '../retry/loop.js';
import type { FinishOutcome } from '../store/store.js';
import { decideOutcome, isAmbiguous } from './outcome.js';
import { retentionOf, toStored } from './stored-answer.js';

export interface Settlement {
  finish: FinishOutcome;
  /** The answer passed back (with a Retry-After when it went back before its wait), or writeguard's error. */
  reply: { kind: 'answer'; answer: Answer; found: Extracted; retryAfter: string | null } | { kind: 'error'; error: WriteguardError };
  /** The upstream's code and request id when writeguard's error replaces its answer. */
  replaced: { code: string | null; requestId: string | null } | null;
}

export interface SettleInput {
  loop: LoopResult<AttemptResult>;
  idempotency: IdempotencyConfig;
  upstream: UpstreamConfig;
  /** Why an earlier attempt may have run, or null. */
  earlier: string | null;
  derived: boolean;
  key: string;
}

export function settlement({ loop, idempotency: idem, upstream, earlier, derived, key }: SettleInput): Settlement {
  const result = loop.result;
  const decided = decideOutcome(result, idem, earlier);
  if (result.kind !== 'answer') {
    const finish: FinishOutcome =
      decided.kind === 'unknown' ? { kind: 'unknown', status: null, requestId: null, reason: decided.reason } : { kind: 'release' };
    const error =
      result.kind === 'not_sent' && decided.kind === 'unknown'
        ? new WriteguardError(
            'outcome_unknown',
            `the upstream could not be reached (${result.reason}), but ${decided.reason}; it is held for reconciliation`,
            {
              idempotencyKey: key,
            },
          )
        : attemptFailureError(result, 'write', key);
    return { finish, reply: { kind: 'error', error }, replaced: null };
  }
  const found = extractAnswer(result.status, result.headers, result.body, upstream);
  let finish: FinishOutcome;
  if (decided.kind === 'completed') {
    const response = toStored(result, idem, upstream.requestIdHeaders);
    finish = { kind: 'complete', status: result.status, requestId: found.requestId, response, ...retentionOf(derived, idem) };
  } else if (decided.kind === 'released') finish = { kind: 'release' };
  else finish = { kind: 'unknown', status: result.status, requestId: found.requestId, reason: decided.reason };
  const replaced = decided.kind === 'unknown' ? { code: found.code, requestId: found.requestId } : null;
  // The answer goes back when it is the write's result or proves nothing ran; an ambiguous one too
  // when the upstream dedupes on the key (the agent may retry with it). Never a "nothing ran"
  // answer after an attempt that may have run.
  if (decided.kind === 'unknown' && !(idem.upstreamHonorsKey && isAmbiguous(result, idem))) {
    const detail = `the upstream answered ${result.status}; the write may have run (${decided.reason}) and is held for reconciliation`;
    return { finish, reply: { kind: 'error', error: new WriteguardError('outcome_unknown', detail, { idempotencyKey: key }) }, replaced };
  }
  // Passed back rather than slept (elapsed budget) or after the last attempt: say when to come back.
  const early = result.headers['retry-after'] === undefined && loop.retryAfterMs !== null && loop.stopped !== 'final';
  return {
    finish,
    reply: { kind: 'answer', answer: result, found, retryAfter: early ? retryAfterSeconds(loop.retryAfterMs!) : null },
    replaced,
  };
}
