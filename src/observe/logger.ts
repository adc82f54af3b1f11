// The process logger: JSON lines for machines, pino-pretty for people.
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export interface LoggerOptions {
  level: string;
  pretty?: boolean;
  /** Where lines go; stdout by default. Tests pass a stream to read them back. */
  destination?: DestinationStream;
}

// Defence in depth: no code path logs these, and if one ever does they are censored.
const REDACT = [
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers["x-agent-key"]',
  'req.headers.cookie',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
];

/** Levels as their labels (`"level":"info"`), as log pipelines (Loki, Elastic, Datadog) expect. */
const LEVEL_LABELS = { level: (label: string) => ({ level: label }) };

export function createLogger(options: LoggerOptions): Logger {
  const base = { level: options.level, base: { service: 'writeguard' }, redact: REDACT };
  if (options.pretty === true) {
    // pino-pretty formats levels itself (pino refuses a level formatter with a transport). Colours only on a
    // terminal: escape codes in a file or a pipe are noise.
    const colorize = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  const labelled = { ...base, formatters: LEVEL_LABELS };
  if (options.destination !== undefined) return pino(labelled, options.destination);
  // Synchronous writes: a line is on its way to the fd before the answer it describes leaves, so a
  // crash cannot keep one and lose the other (pino's default buffers and writes later).
  return pino(labelled, pino.destination({ dest: 1, sync: true }));
}
