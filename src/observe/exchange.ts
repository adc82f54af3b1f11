// Exactly one "response" line per request: written just before the answer's bytes leave (so no crash
// can separate an answer from its line), or, when no answer is sent (the agent left), once the
// request is over.
import type { ServerResponse } from 'node:http';
import { infoLine, type Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { RequestTrace } from './trace-types.js';

export type Outcome = 'forwarded' | 'replayed' | 'rejected' | 'released' | 'unknown';
export type KeySource = 'client' | 'body' | 'derived' | 'uuid' | 'none';

export class Exchange {
  readonly id: string;
  readonly method: string;
  readonly path: string;
  private readonly startedAt = performance.now();
  upstream: string | null = null;
  /** The upstream's request id; writeguard's own id stands in when there is none. */
  upstreamRequestId: string | null = null;
  upstreamCode: string | null = null;
  /** Set when writeguard answered in the upstream's place (its own error). */
  ownCode: string | null = null;
  outcome: Outcome = 'forwarded';
  keySource: KeySource | null = null;
  idempotencyKeyHash: string | null = null;
  attempts = 0;
  /** X-Stainless-Retry-Count when ≥ 1: the SDK says this request is its own retry. */
  sdkRetryCount: number | null = null;
  /** The status the agent was (or would have been) answered with, when the socket is gone. */
  status: number | null = null;
  /** The request's span when tracing is on; null when it is off. */
  trace: RequestTrace | null = null;
  private holds = 0;
  private closed = false;
  private logged = false;
  private sending = false;

  constructor(
    id: string,
    method: string,
    rawUrl: string,
    private readonly res: ServerResponse,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {
    this.id = id;
    this.method = method;
    const q = rawUrl.indexOf('?');
    this.path = q === -1 ? rawUrl : rawUrl.slice(0, q);
    res.once('close', () => {
      this.closed = true;
      this.flush();
    });
  }

  /** Keeps the line open while work the agent may not wait for (a write upstream) runs. */
  hold(): void {
    this.holds++;
  }

  release(): void {
    this.holds--;
    this.flush();
  }

  /** The answer is about to be written: everything the line says is known now. */
  answering(): void {
    this.sending = true;
    this.write();
  }

  private flush(): void {
    if (!this.closed || this.holds > 0) return;
    this.write();
  }

  private write(): void {
    if (this.logged) return;
    this.logged = true;
    const replaced = this.ownCode !== null;
    const status = this.status ?? this.res.statusCode;
    const code = this.ownCode ?? this.upstreamCode;
    const clientGone = !this.sending && !this.res.writableFinished;
    const { trace } = this;
    const durationMs = Math.round((performance.now() - this.startedAt) * 100) / 100;
    this.metrics.response({
      upstream: this.upstream,
      method: this.method,
      outcome: this.outcome,
      status,
      durationMs,
      sdkRetry: this.sdkRetryCount !== null,
    });
    infoLine(
      this.log,
      {
        request_id: replaced ? this.id : (this.upstreamRequestId ?? this.id),
        code,
        status,
        method: this.method,
        upstream: this.upstream,
        path: this.path,
        outcome: this.outcome,
        key_source: this.keySource,
        idempotency_key: this.idempotencyKeyHash,
        attempts: this.attempts,
        sdk_retry_count: this.sdkRetryCount ?? undefined,
        upstream_code: replaced ? this.upstreamCode : undefined,
        upstream_request_id: replaced ? this.upstreamRequestId : undefined,
        client_gone: clientGone ? true : undefined,
        trace_id: trace?.traceId,
        span_id: trace?.spanId,
        duration_ms: durationMs,
      },
      'response',
    );
    if (trace === null) return;
    const { upstream, outcome, keySource, idempotencyKeyHash: keyHash, attempts } = this;
    trace.end({ status, upstream, outcome, code, keySource, keyHash, attempts, clientGone });
  }
}
