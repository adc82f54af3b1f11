// Whether writeguard traces, and the door to the OpenTelemetry SDK: imported only when tracing is
// on, so with it off (the default) not a module of the SDK is loaded and a request pays a null check.
import type { Logger } from './logger.js';
import type { Tracing } from './trace-types.js';

type Env = Readonly<Record<string, string | undefined>>;

const set = (value: string | undefined): boolean => value !== undefined && value.trim() !== '';

/**
 * On when an OTLP endpoint is configured, read as the SDK reads these variables (empty is unset);
 * off whatever the endpoint when the standard switches say so.
 */
export function tracingEnabled(env: Env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return false;
  return set(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) || set(env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

/** The tracer, or null when tracing is off. The SDK reads its other OTEL_* settings from the environment itself. */
export async function startTracing(log: Logger): Promise<Tracing | null> {
  if (!tracingEnabled(process.env)) return null;
  const { createOtelTracing } = await import('./otel-tracing.js');
  return createOtelTracing(log);
}
