// How records and step replies travel to and from the Lua scripts (scripts.ts has the field
// layout), pure. A reply that is not what a script returns is a CorruptRecordError.
import type { BeginOutcome, IdemRecord, Phase, RecordState, StepResult, StoredResponse } from '../store.js';

/** A nullable script argument: '' for null, '=' followed by the text otherwise. */
export function nullable(value: string | null): string {
  return value === null ? '' : `=${value}`;
}

export function wholeMs(ms: number): string {
  return String(Math.max(0, Math.round(ms)));
}

const STATES: readonly RecordState[] = ['in_flight', 'completed', 'outcome_unknown'];
const PHASES: readonly Phase[] = ['claimed', 'sent'];
export const BEGIN_OUTCOMES: readonly BeginOutcome[] = ['acquired', 'replay', 'mismatch', 'in_use', 'unknown', 'expired', 'duplicate'];

export class CorruptRecordError extends Error {
  override readonly name = 'CorruptRecordError';
}

export function parseRecord(flat: unknown, resp: unknown): IdemRecord {
  if (!Array.isArray(flat)) throw new CorruptRecordError('record');
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), String(flat[i + 1]));
  const text = (name: string): string => {
    const value = fields.get(name);
    if (value === undefined) throw new CorruptRecordError(name);
    return value;
  };
  const num = (name: string): number => {
    const value = Number(text(name));
    if (!Number.isFinite(value)) throw new CorruptRecordError(name);
    return value;
  };
  const state = text('state') as RecordState;
  const phase = text('phase') as Phase;
  if (!STATES.includes(state) || !PHASES.includes(phase)) throw new CorruptRecordError('state');
  const status = fields.get('status');
  return {
    state,
    phase,
    fingerprint: text('fp'),
    upstreamKey: text('ukey'),
    owner: text('owner'),
    epoch: num('epoch'),
    leaseUntil: num('lease'),
    attempts: num('attempts'),
    createdAt: num('created'),
    updatedAt: num('updated'),
    responseUntil: num('respUntil'),
    status: status === undefined ? null : Number(status),
    requestId: fields.get('reqId') ?? null,
    response: typeof resp === 'string' ? (JSON.parse(resp) as StoredResponse) : null,
    reason: fields.get('reason') ?? null,
    meta: JSON.parse(text('meta')) as IdemRecord['meta'],
  };
}

export function stepResult(reply: unknown): StepResult {
  if (reply === 'ok' || reply === 'stale') return reply;
  throw new CorruptRecordError('step reply');
}
