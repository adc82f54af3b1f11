// What a write gets from a record that is not its own to attempt: the stored answer, or a refusal
// that says what happened and what to do next. Pure.
import { WriteguardError } from '../errors.js';
import type { Answer } from '../http/attempt.js';
import type { BeginResult } from '../store/store.js';
import { fromStored } from './stored-answer.js';

export type RecordAnswer =
  { kind: 'replay'; answer: Answer; requestId: string | null } | { kind: 'refused'; error: WriteguardError; requestId: string | null };

export function answerFromRecord(begun: BeginResult, key: string): RecordAnswer {
  const { record } = begun;
  const refused = (error: WriteguardError): RecordAnswer => ({ kind: 'refused', error, requestId: null });
  switch (begun.outcome) {
    case 'replay':
      if (record.response === null) {
        const error = new WriteguardError(
          'response_not_replayable',
          `the original answer (status ${record.status ?? 'unknown'}) was too large to store; the write is not run again`,
          { idempotencyKey: key },
        );
        return { kind: 'refused', error, requestId: record.requestId };
      }
      return { kind: 'replay', answer: fromStored(record.response), requestId: record.requestId };
    case 'mismatch':
      return refused(
        new WriteguardError(
          'idempotency_key_reuse_mismatch',
          'this key was used with a different request (method, path, body, account or credential); use a new key for a new request',
          { idempotencyKey: key },
        ),
      );
    case 'in_use':
      return refused(
        new WriteguardError('idempotency_key_in_use', 'a request with this key is still in progress; retry shortly to get its result', {
          idempotencyKey: key,
          headers: { 'retry-after': '1', 'retry-after-ms': '500' },
        }),
      );
    case 'unknown':
      return refused(
        new WriteguardError(
          'outcome_unknown',
          `an earlier attempt with this key may have run (${record.reason ?? 'no answer'}); it must be reconciled before it can be retried`,
          { idempotencyKey: key },
        ),
      );
    case 'expired':
      return refused(
        new WriteguardError('idempotency_key_expired', 'this key was used and its stored result has expired; the write is not run again', {
          idempotencyKey: key,
        }),
      );
    case 'duplicate':
      return refused(
        new WriteguardError(
          'possible_duplicate',
          `an identical ${record.meta.method} ${record.meta.path} was made at ${new Date(record.createdAt).toISOString()} (key ${key}); ` +
            'send Idempotency-Intent: retry to get its result, or Idempotency-Intent: new to make another',
          { idempotencyKey: key },
        ),
      );
    case 'acquired':
      throw new Error('unreachable: an acquired record is attempted, not answered from');
  }
}
