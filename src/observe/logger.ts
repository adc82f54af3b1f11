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
  // Synchronous writes: a line is on its way to the fd before the answer it describes leaves, so a
  // crash cannot keep one and lose the other (pino's default buffers and writes later).
  const log = pino(labelled, options.destination ?? pino.destination({ dest: 1, sync: true }));
  JSON_LINES.add(log);
  return log;
}

/** Loggers made above for JSON lines: no mixin, hooks, nested key or serializers of their own. */
const JSON_LINES = new WeakSet<Logger>();

type Flat = string | number | boolean | null | undefined;
/** The pino internals a line is framed with (pino.symbols: its level prefix, clock, bindings and destination). */
interface Framing {
  [pino.symbols.lsCacheSym]: Record<number, string>;
  [pino.symbols.timeSym]: () => string;
  [pino.symbols.chindingsSym]: string;
  [pino.symbols.streamSym]: { write(line: string): void };
}

/**
 * An info line of flat fields, as `log.info(fields, msg)` writes it — the same level, time,
 * bindings and destination — without pino's general serializer: about 25k fewer instructions per
 * response line, a tenth of a replay's (callgrind). The same bytes as pino's
 * (test/unit/observe/logger.test.ts), but for a lone surrogate in a string, escaped as JSON.stringify
 * does. A logger not made by createLogger gets log.info.
 */
export function infoLine(log: Logger, fields: Readonly<Record<string, Flat>>, msg: string): void {
  if (!JSON_LINES.has(log)) return log.info(fields, msg);
  if (!log.isLevelEnabled('info')) return;
  const framing = log as unknown as Framing;
  let line =
    framing[pino.symbols.lsCacheSym][log.levels.values.info!]! + framing[pino.symbols.timeSym]() + framing[pino.symbols.chindingsSym];
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined) continue;
    const text =
      typeof value === 'string' ? JSON.stringify(value) : typeof value === 'number' && !Number.isFinite(value) ? 'null' : String(value);
    line += `,"${key}":${text}`;
  }
  framing[pino.symbols.streamSym].write(`${line},"msg":${JSON.stringify(msg)}}\n`);
}
