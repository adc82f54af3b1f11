// How records and step replies travel to and from the Lua scripts (scripts.ts has the field
// layout), pure. A reply that is not what a script returns is a CorruptRecordError.
import type {
  Approval,
  BeginInput,
  BeginOutcome,
  BeginResult,
  Hold,
  IdemRecord,
  Leash,
  Phase,
  RecordState,
  StepResult,
  StoredResponse,
} from '../store.js';
import { decideBegin } from '../decide.js';

/** A nullable script argument: '' for null, '=' followed by the text otherwise. */
export function nullable(value: string | null): string {
  return value === null ? '' : `=${value}`;
}

/**
 * A stored response as a script argument and the value of the record's `:resp` key, or '' for none:
 * its status and headers as one line of JSON, a newline, then the body's raw bytes (never base64:
 * JSON text holds no raw newline, so the first one ends the head). Never empty, so it needs no '='
 * prefix — which would make the script copy the whole answer to strip it.
 */
export function responseArg(response: StoredResponse | null): Buffer | string {
  if (response === null) return '';
  const head = Buffer.from(`${JSON.stringify({ status: response.status, headers: response.headers })}\n`);
  return Buffer.concat([head, response.body], head.length + response.body.length);
}

/**
 * The `:resp` value back (a Buffer reply: scripts that return it run as their Buffer variant), or
 * null for none. A value without a newline was written by a version that kept the whole answer as
 * JSON, the body base64 inside it: still replayed after an upgrade.
 */
export function parseResponse(value: unknown): StoredResponse | null {
  if (!Buffer.isBuffer(value)) return null;
  const newline = value.indexOf(0x0a);
  if (newline === -1) {
    const legacy = JSON.parse(value.toString()) as Omit<StoredResponse, 'body'> & { body: string };
    return { status: legacy.status, headers: legacy.headers, body: Buffer.from(legacy.body, 'base64') };
  }
  const head = JSON.parse(value.toString('utf8', 0, newline)) as Omit<StoredResponse, 'body'>;
  return { status: head.status, headers: head.headers, body: value.subarray(newline + 1) };
}

/** A Buffer reply's element as text (a nil stays null). */
const asText = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

export function wholeMs(ms: number): string {
  return String(Math.max(0, Math.round(ms)));
}

const STATES: readonly RecordState[] = ['in_flight', 'completed', 'outcome_unknown', 'awaiting_approval'];
const APPROVAL_STATES: ReadonlyArray<Approval['state']> = ['pending', 'approved', 'denied', 'expired'];
const PHASES: readonly Phase[] = ['claimed', 'sent'];
export const BEGIN_OUTCOMES: readonly BeginOutcome[] = [
  'acquired',
  'replay',
  'mismatch',
  'in_use',
  'unknown',
  'expired',
  'duplicate',
  'approval_required',
  'approval_pending',
  'approval_denied',
  'approval_expired',
];

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
    response: parseResponse(resp),
    reason: fields.get('reason') ?? null,
    meta: JSON.parse(text('meta')) as IdemRecord['meta'],
    leash: parseLeash(fields.get('intent'), fields.get('holds')),
    approval: parseApproval(fields.get('appr'), fields.get('apprUntil'), fields.get('apprAmount')),
  };
}

function parseApproval(state: string | undefined, until: string | undefined, amount: string | undefined): Approval | null {
  if (state === undefined) return null;
  if (!APPROVAL_STATES.includes(state as Approval['state']) || until === undefined || amount === undefined)
    throw new CorruptRecordError('approval');
  return { state: state as Approval['state'], expiresAt: Number(until), amount: Number(amount) };
}

function parseLeash(intent: string | undefined, holds: string | undefined): Leash {
  const parts = holds === undefined || holds === '' ? [] : holds.split(' ');
  if (parts.length % 2 !== 0) throw new CorruptRecordError('holds');
  const list: Hold[] = [];
  for (let i = 0; i < parts.length; i += 2) {
    const amount = Number(parts[i + 1]);
    if (!Number.isSafeInteger(amount)) throw new CorruptRecordError('holds');
    list.push({ bucket: parts[i]!, amount });
  }
  return { intent: intent ?? null, holds: list };
}

/** The begin script's ARGV after the member (scripts.ts BEGIN). */
export function beginArgs(input: BeginInput, sentinel: string): string[] {
  const args = [
    input.fingerprint,
    input.upstreamKey,
    input.owner,
    wholeMs(input.leaseMs),
    input.mode,
    input.reclaimUnknown ? '1' : '0',
    JSON.stringify(input.meta),
    sentinel,
  ];
  // A plain write's begin stops at the sentinel (the script reads what is absent as none).
  if (input.intent === null && input.pointer === null && input.approval === null && input.charges.length === 0) return args;
  args.push(
    input.intent?.mode ?? '',
    input.intent?.hash ?? '',
    input.intent === null ? '0' : wholeMs(input.intent.windowMs),
    input.pointer?.operationKey ?? '',
    input.pointer === null ? '0' : wholeMs(Math.max(1, input.pointer.ttlMs)),
    input.approval === null ? '' : String(input.approval.amount),
    input.approval === null ? '0' : wholeMs(input.approval.ttlMs),
    String(input.charges.length),
  );
  for (const charge of input.charges)
    args.push(charge.bucket, String(charge.amount), String(charge.limit), charge.resetAt === null ? '' : wholeMs(charge.resetAt));
  return args;
}

/** The begin script's reply, as Buffers (its replay carries the stored answer's raw bytes). */
export function parseBeginReply(reply: unknown, input: BeginInput): BeginResult {
  if (!Array.isArray(reply)) throw new CorruptRecordError('begin reply');
  const tag = asText(reply[0]);
  if (tag === 'intent_duplicate') return { outcome: 'intent_duplicate', holder: parseHolder(reply[1]) };
  if (tag === 'limit_exceeded') {
    const charge = input.charges[Number(reply[1]) - 1];
    if (charge === undefined) throw new CorruptRecordError('begin reply');
    const { bucket, limit, amount, resetAt } = charge;
    return { outcome: 'limit_exceeded', refusal: { bucket, limit, amount, resetAt, used: Number(asText(reply[2])) } };
  }
  // A record this begin made is the one the memory store would have made at the server's `now`.
  if (tag === 'created') return decideBegin(null, input, Number(asText(reply[1]))).result;
  if (!BEGIN_OUTCOMES.includes(tag as BeginOutcome)) throw new CorruptRecordError('begin reply');
  return { outcome: tag as BeginOutcome, record: parseRecord(reply[1], reply[2]) };
}

/** HMGET m, k, c, s, st, meta of an intent index. */
function parseHolder(reply: unknown): Extract<BeginResult, { outcome: 'intent_duplicate' }>['holder'] {
  if (!Array.isArray(reply)) throw new CorruptRecordError('intent');
  const [, upstreamKey, createdAt, state, status, meta] = reply.map(asText);
  if (upstreamKey == null || meta == null || !STATES.includes(state as RecordState)) throw new CorruptRecordError('intent');
  return {
    upstreamKey,
    createdAt: Number(createdAt),
    state: state as RecordState,
    status: status == null || status === '' ? null : Number(status),
    meta: JSON.parse(meta) as IdemRecord['meta'],
  };
}

export function stepResult(reply: unknown): StepResult {
  if (reply === 'ok' || reply === 'stale') return reply;
  throw new CorruptRecordError('step reply');
}
