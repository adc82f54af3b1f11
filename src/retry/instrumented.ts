// One upstream attempt as both request paths make it: sent (with its span when tracing is on),
// counted, and a 429 noted as a cooldown for the agent's upstream; and the line and metric of a retry
// about to wait.
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import { sendAttempt, type AttemptRequest, type AttemptResult, type StreamedAnswer } from '../http/attempt.js';
import type { Logger } from '../observe/logger.js';
import { retryReason, type Metrics } from '../observe/metrics.js';
import type { RequestTrace } from '../observe/trace-types.js';
import { noteRateLimit, type RetryKit } from './cooldown.js';

export interface AttemptTarget {
  upstream: UpstreamConfig;
  dispatcher: Dispatcher;
  /** The agent's scope: a 429 cools down this agent's upstream. */
  scope: string;
  kit: RetryKit;
  metrics: Metrics;
  log: Logger;
  /** The request's span, parent of each attempt's; null when tracing is off. */
  trace: RequestTrace | null;
}

type Kind = 'read' | 'write';

/** A write's (or a probe's) attempt: the whole answer buffered. */
export function attemptOnce(target: AttemptTarget, kind: Kind, req: AttemptRequest): Promise<AttemptResult>;
/** A read's attempt: answers over `streamAbove` bytes stream. */
export function attemptOnce(
  target: AttemptTarget,
  kind: Kind,
  req: AttemptRequest,
  streamAbove: number,
): Promise<AttemptResult | StreamedAnswer>;
export async function attemptOnce(
  target: AttemptTarget,
  kind: Kind,
  req: AttemptRequest,
  streamAbove?: number,
): Promise<AttemptResult | StreamedAnswer> {
  const span = target.trace === null ? null : target.trace.attempt(target.upstream.name, req);
  const sent = span === null ? req : { ...req, headers: span.headers };
  const result =
    streamAbove === undefined ? await sendAttempt(target.dispatcher, sent) : await sendAttempt(target.dispatcher, sent, streamAbove);
  span?.end(result);
  if (result.kind === 'answer' || result.kind === 'stream') {
    target.metrics.attempt(target.upstream.name, kind, result.status);
    if (result.status === 429) noteRateLimit(target.kit, target.scope, target.upstream, result.headers);
  } else target.metrics.attempt(target.upstream.name, kind, null);
  return result;
}

/** A retry about to wait: counted by reason, and one `attempt` line (never a request id). */
export function noteRetry(target: AttemptTarget, kind: Kind, n: number, delayMs: number, result: AttemptResult | StreamedAnswer): void {
  const status = result.kind === 'answer' || result.kind === 'stream' ? result.status : null;
  const failure = result.kind === 'not_sent' || result.kind === 'no_answer' ? result.reason : undefined;
  target.metrics.retry(target.upstream.name, kind, retryReason(status, failure));
  target.log.info({ upstream: target.upstream.name, attempt: n, status, failure, delay_ms: delayMs }, 'attempt');
}
