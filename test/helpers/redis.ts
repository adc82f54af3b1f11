// A real redis-server on a free loopback port, in a fresh temporary directory, stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { freePort } from './ports.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { configSchema } from '../../src/config/schema.js';
import type { StoreConfig } from '../../src/store/redis.js';

export interface RedisOptions {
  /** AOF persistence: on, a restart keeps the data; off (default), a restart forgets everything. */
  appendonly?: boolean;
  /** Extra redis-server arguments. */
  args?: string[];
}

export interface RedisServer {
  url: string;
  port: number;
  /** The current process's PID (a restart changes it). */
  readonly pid: number;
  /** Graceful stop (SIGTERM, SIGKILL if it lingers); waits for the exit. The directory stays for a restart. */
  stop(): Promise<void>;
  /** Sends a signal to the process by PID (SIGSTOP, SIGCONT, SIGKILL…). */
  kill(signal: NodeJS.Signals): void;
  /** Stops and starts again on the same port and directory. */
  restart(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const running = new Set<ChildProcess>();
const dirs = new Set<string>();

// Last resort: a test that forgot to stop its server does not leave it behind; no directory stays.
process.once('exit', () => {
  for (const child of running) if (child.pid !== undefined && child.exitCode === null) {
    try {
      process.kill(child.pid, 'SIGCONT');
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** One PING over a raw socket: true on +PONG (not while the AOF is loading). */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'wg-redis-'));
  dirs.add(dir);
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', options.appendonly === true ? 'yes' : 'no',
    '--dir', dir, '--daemonize', 'no', '--protected-mode', 'yes', ...(options.args ?? []),
  ];
  let child: ChildProcess;

  const launch = async (): Promise<void> => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    running.add(child);
    child.once('exit', () => running.delete(child));
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
      if (await ping(port)) return;
      await sleep(25);
    }
    await halt();
    throw new Error('redis-server did not answer PING in time');
  };

  const halt = async (): Promise<void> => {
    const pid = child.pid;
    if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const gone = exited(child);
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, STOP_TIMEOUT_MS);
    await gone;
    clearTimeout(timer);
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid!;
    },
    stop: halt,
    kill: (signal) => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, signal);
    },
    restart: async () => {
      await halt();
      await launch();
    },
  };
}

/** The `store` section for a Redis at `url`: schema defaults, then `over`. */
export function redisStoreConfig(url: string, over: Partial<StoreConfig> = {}): StoreConfig {
  const config = configSchema.parse({ store: { kind: 'redis', url }, upstreams: [{ name: 'u', target: 'http://127.0.0.1:1' }] });
  return { ...config.store, ...over };
}
