// Dead letters: the writes whose outcome is unknown, as operators see them, and their resolution —
// a compare-and-set on the epoch the operator read. Shared by the admin routes and the CLI.
import { z } from 'zod';
import type { Config } from '../config/schema.js';
import { recordId } from '../store/record-id.js';
import type { DeadLetter, IdemRecord, RecordKey, ResolveOutcome, StepResult, Store, StoredResponse } from '../store/store.js';

export { parseRecordId as parseDeadLetterId } from '../store/record-id.js';

export interface RecordView {
  id: string;
  scope: string;
  upstream: string;
  state: string;
  method: string;
  path: string;
  key_source: string;
  /** The key the upstream received: what to look the operation up by when reconciling. */
  upstream_key: string;
  reason: string | null;
  status: number | null;
  request_id: string | null;
  attempts: number;
  epoch: number;
  created_at: string;
  updated_at: string;
}

export function recordView(key: RecordKey, record: IdemRecord): RecordView {
  return {
    id: recordId(key),
    scope: key.scope,
    upstream: key.upstream,
    state: record.state,
    method: record.meta.method,
    path: record.meta.path,
    key_source: record.meta.keySource,
    upstream_key: record.upstreamKey,
    reason: record.reason,
    status: record.status,
    request_id: record.requestId,
    attempts: record.attempts,
    epoch: record.epoch,
    created_at: new Date(record.createdAt).toISOString(),
    updated_at: new Date(record.updatedAt).toISOString(),
  };
}

export async function listDeadLetters(store: Store, limit: number): Promise<RecordView[]> {
  return (await store.deadLetters(limit)).map((d: DeadLetter) => recordView(d.key, d.record));
}

/** What an operator says about a dead letter: it ran (with the answer to replay, if known), or it did not. */
export const resolutionSchema = z.discriminatedUnion('outcome', [
  z.strictObject({
    outcome: z.literal('executed'),
    /** The answer to replay to the agent's retries; without it they get 409 response_not_replayable. */
    response: z
      .strictObject({
        status: z.number().int().min(100).max(599),
        headers: z.record(z.string(), z.string()).default({}),
        /** The body as text; or `body_base64` for bytes. */
        body: z.string().optional(),
        body_base64: z.base64().optional(),
      })
      .optional(),
    status: z.number().int().min(100).max(599).optional(),
    epoch: z.number().int().positive().optional(),
  }),
  z.strictObject({ outcome: z.literal('not_executed'), epoch: z.number().int().positive().optional() }),
]);
export type Resolution = z.infer<typeof resolutionSchema>;

export type ResolveResult = { result: StepResult; record: IdemRecord | null } | { result: 'not_found'; record: null };

/**
 * Applies a resolution. Without an explicit epoch the record's current one is used; the store's
 * compare-and-set still refuses it if the record changed in between.
 */
export async function resolveDeadLetter(
  store: Store,
  upstreams: Config['upstreams'],
  key: RecordKey,
  resolution: Resolution,
): Promise<ResolveResult> {
  const record = await store.get(key);
  if (record === null) return { result: 'not_found', record: null };
  const epoch = resolution.epoch ?? record.epoch;
  let outcome: ResolveOutcome = { kind: 'not_executed' };
  if (resolution.outcome === 'executed') {
    // The upstream's own retention; defaults when an operator command runs without its config file.
    const idem = upstreams.find((u) => u.name === key.upstream)?.idempotency;
    const given = resolution.response;
    const response: StoredResponse | null =
      given === undefined
        ? null
        : {
            status: given.status,
            headers: given.headers,
            body: given.body_base64 === undefined ? Buffer.from(given.body ?? '') : Buffer.from(given.body_base64, 'base64'),
          };
    outcome = {
      kind: 'executed',
      status: given?.status ?? resolution.status ?? record.status ?? 200,
      response,
      ttlSec: idem?.ttlSec ?? 86_400,
      tombstoneSec: idem?.tombstoneSec ?? 604_800,
    };
  }
  return { result: await store.resolve(key, { epoch, leash: record.leash }, outcome), record };
}
