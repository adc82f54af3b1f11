// Tracing with the OpenTelemetry SDK, loaded only when it is on (tracing.ts): a SERVER span per
// proxied request, a CLIENT span per upstream attempt, store steps as events on the request's span
// (an event is a small record on a span already there; a child span would be a span of its own to
// build and export), W3C trace context in from the agent and out on every attempt. Spans are parented
// explicitly: no global provider, context manager or instrumentation, so nothing else in the process
// (undici, node:http) is patched or traced twice.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  defaultTextMapGetter,
  defaultTextMapSetter,
  diag,
  DiagLogLevel,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { VERSION } from '../config/version.js';
import type { AttemptRequest } from '../http/attempt.js';
import { firstHeader, type HeaderMap } from '../http/headers.js';
import type { Logger } from './logger.js';
import { attemptAttributes, attemptEndAttributes, requestAttributes, responseAttributes } from './trace-attributes.js';
import type { AttemptTrace, RequestTrace, ResponseFacts, Tracing } from './trace-types.js';

/** How long close() waits for the last spans to leave; a collector that hangs must not hold a shutdown. */
const SHUTDOWN_MS = 2_000;

const propagator = new W3CTraceContextPropagator();

/** `headers` with `span` as the parent: the agent's own trace headers replaced, never left beside ours. */
function withParent(headers: HeaderMap, span: Span): HeaderMap {
  const out: HeaderMap = { ...headers };
  delete out.traceparent;
  delete out.tracestate;
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), out, defaultTextMapSetter);
  return out;
}

class OtelRequestTrace implements RequestTrace {
  readonly traceId: string;
  readonly spanId: string;
  private attempts = 0;

  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
  ) {
    const context = span.spanContext();
    this.traceId = context.traceId;
    this.spanId = context.spanId;
  }

  attempt(upstream: string, req: AttemptRequest): AttemptTrace {
    const attributes = attemptAttributes(upstream, req, this.attempts++);
    const span = this.tracer.startSpan(req.method, { kind: SpanKind.CLIENT, attributes }, trace.setSpan(ROOT_CONTEXT, this.span));
    return {
      headers: withParent(req.headers, span),
      end: (result) => {
        const { attributes: ended, error } = attemptEndAttributes(result);
        span.setAttributes(ended);
        if (error !== null) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      },
    };
  }

  propagate(headers: HeaderMap): HeaderMap {
    return withParent(headers, this.span);
  }

  storeStep(op: string, startedAt: number, failed: boolean): void {
    const durationMs = Math.round((performance.now() - startedAt) * 1000) / 1000;
    const attributes = failed
      ? { 'writeguard.store.duration_ms': durationMs, 'writeguard.store.failed': true }
      : { 'writeguard.store.duration_ms': durationMs };
    this.span.addEvent(`store.${op}`, attributes, startedAt);
  }

  end(facts: ResponseFacts): void {
    const { attributes, error } = responseAttributes(facts);
    this.span.setAttributes(attributes);
    if (error !== null) this.span.setStatus({ code: SpanStatusCode.ERROR });
    this.span.end();
  }
}

/** The SDK's own warnings and errors (a collector that refuses or cannot be reached) as writeguard's log lines. */
function forwardDiagnostics(log: Logger): void {
  const warn = (message: string): void => log.warn({ detail: message }, 'tracing: the OpenTelemetry SDK reports a problem');
  const quiet = (): void => {};
  diag.setLogger(
    { error: warn, warn, info: quiet, debug: quiet, verbose: quiet },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
}

/**
 * The tracer, from the standard OTEL_* variables the SDK reads itself (endpoint, headers, timeout,
 * compression, sampler, batch sizes, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES); service.name
 * `writeguard` unless they name another. OTLP over HTTP with JSON bodies.
 */
export function createOtelTracing(log: Logger): Tracing {
  forwardDiagnostics(log);
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'writeguard', [ATTR_SERVICE_VERSION]: VERSION }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())] });
  const tracer = provider.getTracer('writeguard', VERSION);
  return {
    request(method, path, headers) {
      const parent = propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
      const attributes = requestAttributes(method, path, firstHeader(headers.host));
      return new OtelRequestTrace(tracer, tracer.startSpan(method, { kind: SpanKind.SERVER, attributes }, parent));
    },
    async shutdown() {
      // A collector that refuses or cannot be reached loses the last spans, never the shutdown.
      const exported = provider.shutdown().then(
        () => true,
        (err: Error) => void log.warn({ err: { message: err.message } }, 'tracing: the last spans could not be exported'),
      );
      const done = await Promise.race([exported, sleep(SHUTDOWN_MS, false, { ref: false })]);
      if (done === false) log.warn({ waited_ms: SHUTDOWN_MS }, 'tracing: spans not exported by shutdown were dropped');
    },
  };
}
