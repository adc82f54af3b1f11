// Runs writeguard for a test: in-process with its log lines captured, or as a real process.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../src/config/load.js';
import type { Config, ConfigInput } from '../../src/config/schema.js';
import { createLogger, type Logger } from '../../src/observe/logger.js';
import { buildServer, type Writeguard } from '../../src/server.js';
import type { Tracing } from '../../src/observe/trace-types.js';
import type { Store } from '../../src/store/store.js';
import { until } from './wait.js';

export type LogLine = Record<string, unknown> & { msg: string };

/** Collects JSON log lines. */
export class LogCapture {
  readonly lines: LogLine[] = [];
  responses(): LogLine[] {
    return this.lines.filter((l) => l.msg === 'response');
  }
  push(text: string): void {
    for (const line of text.split('\n')) if (line.trim() !== '') this.lines.push(JSON.parse(line) as LogLine);
  }
  /** Waits until `n` response lines have been written (they may trail the answer by a tick). */
  async waitForResponses(n: number, timeoutMs = 5000): Promise<LogLine[]> {
    await until(() => this.responses().length >= n, { timeoutMs, intervalMs: 10 });
    return this.responses();
  }
}

export interface RunningWriteguard {
  /** Base URL of the main listener. */
  url: string;
  /** Base URLs of all proxy listeners, main first. */
  urls: string[];
  adminUrl: string;
  logs: LogCapture;
  server: Writeguard;
  close(): Promise<void>;
}

export interface StartOptions {
  /**
   * Builds the store writeguard uses (e.g. `createRedisStore(cfg, log, { checkIntervalMs: 60_000 })`)
   * from the parsed store section and writeguard's logger; closed when writeguard closes.
   */
  store?: (storeConfig: Config['store'], log: Logger) => Store;
  /** Starts the tracing writeguard uses (e.g. observe/tracing.ts `startTracing`) with its logger; shut down when writeguard closes. */
  tracing?: (log: Logger) => Promise<Tracing | null>;
}

/** Starts writeguard in this process on free loopback ports; nothing waits for the store to be ready. */
export async function startWriteguard(
  input: Partial<ConfigInput> & Pick<ConfigInput, 'upstreams'>,
  options: StartOptions = {},
): Promise<RunningWriteguard> {
  const config = parseConfig({
    ...input,
    listen: { host: '127.0.0.1', port: 0, ...input.listen },
    admin: { host: '127.0.0.1', port: 0, ...input.admin },
  });
  const logs = new LogCapture();
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      logs.push(chunk.toString('utf8'));
      done();
    },
  });
  const log = createLogger({ level: 'info', destination });
  const store = options.store?.(config.store, log);
  const tracing = (await options.tracing?.(log)) ?? null;
  const server = buildServer(config, log, { ...(store === undefined ? {} : { store }), tracing });
  const close = async (): Promise<void> => {
    await server.close();
    await store?.close();
  };
  let bound: { proxies: string[]; admin: string };
  try {
    bound = await server.listen();
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  return { url: bound.proxies[0]!, urls: bound.proxies, adminUrl: bound.admin, logs, server, close };
}

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface WriteguardProcess {
  child: ChildProcess;
  logs: LogCapture;
  stderr: () => string;
  /** Resolves with the bound URLs once writeguard logs that it listens. */
  ready: Promise<{ listen: string[]; admin: string }>;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

/** Launches the built CLI as a real process (for signals, kills and exit codes). */
export function launchWriteguard(args: string[], env: NodeJS.ProcessEnv = {}): WriteguardProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs = new LogCapture();
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const ready = new Promise<{ listen: string[]; admin: string }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      logs.push(line);
      const last = logs.lines.at(-1);
      if (last?.msg === 'writeguard listening') resolve({ listen: last.listen as string[], admin: last.admin as string });
    });
    void exited.then((code) => reject(new Error(`writeguard exited (${code}) before listening: ${stderr}`)));
  });
  ready.catch(() => {});
  return { child, logs, stderr: () => stderr, ready, exited, kill: (signal = 'SIGTERM') => void child.kill(signal) };
}
