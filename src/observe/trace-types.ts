// What the proxy and the write path see of tracing: interfaces only. The OpenTelemetry SDK behind
// them is loaded only when tracing is on (tracing.ts); off, every holder of a trace has null.
import type { AttemptRequest, AttemptResult, StreamedAnswer } from '../http/attempt.js';
import type { HeaderMap } from '../http/headers.js';

export interface Tracing {
  /** A SERVER span for one proxied request, continuing the agent's W3C `traceparent` when it sent one. */
  request(method: string, path: string, headers: HeaderMap): RequestTrace;
  /** Exports what is still buffered, then stops. */
  shutdown(): Promise<void>;
}

export interface RequestTrace {
  readonly traceId: string;
  readonly spanId: string;
  /** A CLIENT span for one upstream attempt; its `headers` carry that span as the upstream's parent. */
  attempt(upstream: string, req: AttemptRequest): AttemptTrace;
  /** `headers` with this request's span as the parent of a request sent without an attempt span. */
  propagate(headers: HeaderMap): HeaderMap;
  /** A store step's time (from `startedAt`, a performance.now()), as an event on the request's span. */
  storeStep(op: string, startedAt: number, failed: boolean): void;
  /** Ends the request's span with what its response line says. */
  end(facts: ResponseFacts): void;
}

export interface AttemptTrace {
  readonly headers: HeaderMap;
  end(result: AttemptResult | StreamedAnswer): void;
}

/** The response line's facts that a request's span carries (observe/exchange.ts). */
export interface ResponseFacts {
  status: number;
  upstream: string | null;
  outcome: string;
  code: string | null;
  keySource: string | null;
  keyHash: string | null;
  attempts: number;
  clientGone: boolean;
}
