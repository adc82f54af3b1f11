// What a write gets from a record that is not its own to attempt: the stored answer, or a refusal
// that says what happened and what to do next. Pure.
import { WriteguardError } from '../errors.js';
import type { Answer } from '../http/attempt.js';
import { recordId } from '../store/record-id.js';
import { RESOLVED_WITHOUT_ANSWER, type BeginResult, type IdemRecord, type IntentHolder, type RecordKey } from '../store/store.js';

export type RecordAnswer =
  { kind: 'replay'; answer: Answer; requestId: string | null } | { kind: 'refused'; error: WriteguardError; requestId: string | null };

/** Why a completed write has no answer to replay, and what the agent does next: never run it again. */
function notStoredDetail(record: IdemRecord): string {
  const status = record.status ?? 'unknown';
  if (record.reason === RESOLVED_WITHOUT_ANSWER) {
    return (
      `an operator resolved this write as executed (status ${status}) without recording its answer; the write is not run again: ` +
      'look its result up at the upstream (GET the object) instead of retrying'
    );
  }
  return `the original answer (status ${status}) was too large to store; the write is not run again: look its result up at the upstream`;
}

/** A budget's refusal is worded where the budgets are known (leash/budgets.ts limitRefused). */
export function answerFromRecord(
  begun: Exclude<BeginResult, { outcome: 'limit_exceeded' }>,
  key: string,
  recordKey: RecordKey,
): RecordAnswer {
  const refused = (error: WriteguardError): RecordAnswer => ({ kind: 'refused', error, requestId: null });
  if (begun.outcome === 'intent_duplicate') return refused(intentDuplicate(begun.holder, key));
  const { record } = begun;
  switch (begun.outcome) {
    case 'replay':
      if (record.response === null) {
        const error = new WriteguardError('response_not_replayable', notStoredDetail(record), { idempotencyKey: key });
        return { kind: 'refused', error, requestId: record.requestId };
      }
      return { kind: 'replay', answer: record.response, requestId: record.requestId };
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
          `the same ${record.meta.method} ${record.meta.path} (an identical body, or the same intent fields) was made at ` +
            `${new Date(record.createdAt).toISOString()} (key ${key}); nothing was sent. If it is the same write, send it again with ` +
            'the header Idempotency-Intent: retry to get its result; if you really mean another, separate one, send it with Idempotency-Intent: new',
          { idempotencyKey: key },
        ),
      );
    case 'approval_required':
    case 'approval_pending':
    case 'approval_denied':
    case 'approval_expired':
      return refused(approvalRefusal(begun.outcome, begun.record, key, recordKey));
    case 'acquired':
      throw new Error('unreachable: an acquired record is attempted, not answered from');
  }
}

/** Where a write above an approval threshold stands, in words an LLM can act on (DESIGN §10.4). */
function approvalRefusal(
  code: 'approval_required' | 'approval_pending' | 'approval_denied' | 'approval_expired',
  record: IdemRecord,
  key: string,
  recordKey: RecordKey,
): WriteguardError {
  const approval = record.approval!;
  const id = recordId(recordKey);
  const until = new Date(approval.expiresAt).toISOString();
  const detail = {
    approval_required: `this ${record.meta.method} ${record.meta.path} needs a person's approval before it is sent (approval ${id}); nothing was sent. Tell the person, then send the same request again (with the same Idempotency-Key, if it had one) after they approve it (before ${until}).`,
    approval_pending: `this write is still waiting for a person's approval (approval ${id}, until ${until}); nothing was sent. Send it again (with the same Idempotency-Key, if it had one) once it is approved.`,
    approval_denied: `a person denied this write (approval ${id}); nothing was sent and it will not be. Do not send it again.`,
    approval_expired: `nobody approved this write before ${until} (approval ${id}); nothing was sent and it will not be. Ask the person before trying again.`,
  }[code];
  return new WriteguardError(code, detail, {
    idempotencyKey: key,
    extensions: { approval_id: id, expires_at: until, amount: approval.amount },
  });
}

const STATE_WORDS: Record<IntentHolder['state'], string> = {
  in_flight: 'is still in progress',
  completed: 'completed',
  outcome_unknown: 'has an unknown outcome (it may have run)',
  awaiting_approval: "is waiting for a person's approval",
};

/** Written for an LLM to act on: what matched, when, how it went, and the exact header for a deliberate second write. */
function intentDuplicate(holder: IntentHolder, key: string): WriteguardError {
  const how = holder.status === null ? STATE_WORDS[holder.state] : `${STATE_WORDS[holder.state]} with status ${holder.status}`;
  // A keyless write's key was made by writeguard: the way back to its result is the intent, not the key.
  const sameOne =
    holder.meta.keySource === 'derived'
      ? 'send it again without an Idempotency-Key and with the header Idempotency-Intent: retry to get its result'
      : `send it again with the Idempotency-Key ${holder.upstreamKey} to get its result`;
  return new WriteguardError(
    'possible_duplicate',
    `this write has the same intent (the same payee, amount and other intent fields) as ${holder.meta.method} ${holder.meta.path} ` +
      `made at ${new Date(holder.createdAt).toISOString()}, which ${how}. Nothing was sent. ` +
      `If it is the same payment, ${sameOne}. ` +
      'If you really mean a second, separate payment, send this request again with the header Idempotency-Intent: new.',
    { idempotencyKey: key, extensions: { duplicate_of: holder.upstreamKey } },
  );
}
