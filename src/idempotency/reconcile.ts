// Settles an unknown outcome by asking the upstream (the route's status-check request, by the key it
// received): found → completed with that answer; not found → released; anything else → unchanged.
import type { Dispatcher } from 'undici';
import type { IdempotencyConfig, ReconcileConfig, UpstreamConfig } from '../config/schema.js';
import { sendAttempt } from '../http/attempt.js';
import type { HeaderMap } from '../http/headers.js';
import type { IdemRecord, ResolveOutcome } from '../store/store.js';
import { retentionOf, toStored } from './stored-answer.js';

export interface Probe {
  config: ReconcileConfig;
  /** The probe's path as the upstream receives it, `{key}` still in it. */
  path: string;
  upstream: UpstreamConfig;
  dispatcher: Dispatcher;
  origin: string;
  /** The write's headers (credentials): the probe asks as the same caller. */
  headers: HeaderMap;
  idempotency: IdempotencyConfig;
}

/** What the probe proves about the record, or null when its answer proves nothing. */
export async function probeOutcome(
  probe: Probe,
  record: IdemRecord,
  derived: boolean,
): Promise<{ outcome: ResolveOutcome; status: number } | null> {
  const headers: HeaderMap = { ...probe.headers };
  for (const name of ['content-type', 'content-length', probe.idempotency.header.toLowerCase()]) delete headers[name];
  const path = probe.path.replace('{key}', encodeURIComponent(record.upstreamKey));
  const answer = await sendAttempt(probe.dispatcher, {
    origin: probe.origin,
    path,
    method: probe.config.method,
    headers,
    body: null,
    timeoutMs: probe.upstream.timeoutMs,
  });
  if (answer.kind !== 'answer') return null;
  if (probe.config.foundStatuses.includes(answer.status)) {
    const response = toStored(answer, probe.idempotency, probe.upstream.requestIdHeaders);
    return {
      outcome: { kind: 'executed', status: answer.status, response, ...retentionOf(derived, probe.idempotency) },
      status: answer.status,
    };
  }
  if (probe.config.notFoundStatuses.includes(answer.status)) return { outcome: { kind: 'not_executed' }, status: answer.status };
  return null;
}
