// A real redis-server on a free loopback port, in a fresh temporary directory, stopped by PID; a
// three-master Redis Cluster of them; and a Redis Sentinel monitoring one.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { configSchema } from '../../src/config/schema.js';
import type { StoreConfig } from '../../src/store/index.js';
import { freePort } from './ports.js';
import { until } from './wait.js';

const run = promisify(execFile);

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
  for (const child of running)
    if (child.pid !== undefined && child.exitCode === null) {
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
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    options.appendonly === true ? 'yes' : 'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--protected-mode',
    'yes',
    ...(options.args ?? []),
  ];
  let child: ChildProcess;

  const launch = async (): Promise<void> => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    running.add(child);
    child.once('exit', () => running.delete(child));
    const answered = await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
        return ping(port);
      },
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 25 },
    );
    if (answered) return;
    await halt();
    throw new Error('redis-server did not answer PING in time');
  };

  const halt = (): Promise<void> => stopChild(child);

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

export interface TestCluster {
  nodes: RedisServer[];
  /** Seed nodes for `store.cluster`. */
  seeds: { host: string; port: number }[];
  /** The node (of `nodes`) whose master owns the hash slot of `key`. */
  ownerOf(key: string): Promise<RedisServer>;
  stop(): Promise<void>;
}

/** A Redis Cluster of three masters, no replicas, on loopback; `stop` stops every node. */
export async function startCluster(): Promise<TestCluster> {
  const nodes: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    for (const s of nodes) await s.stop();
  };
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }),
      );
    }
    await run(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 10_000 },
    );
    const ok = await until(
      async () => {
        const states = await Promise.all(
          nodes.map((s) => run('redis-cli', ['-p', String(s.port), 'cluster', 'info'], { timeout: 2000 }).then((r) => r.stdout)),
        );
        return states.every((info) => info.includes('cluster_state:ok'));
      },
      { timeoutMs: 10_000 },
    );
    if (!ok) throw new Error('cluster did not become ok');
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes,
    seeds: nodes.map((s) => ({ host: '127.0.0.1', port: s.port })),
    async ownerOf(key: string) {
      const port = String(nodes[0]!.port);
      const slot = Number((await run('redis-cli', ['-p', port, 'cluster', 'keyslot', key], { timeout: 2000 })).stdout.trim());
      // CLUSTER NODES: "<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <state> <slot ranges...>"
      const lines = (await run('redis-cli', ['-p', port, 'cluster', 'nodes'], { timeout: 2000 })).stdout.split('\n');
      for (const line of lines) {
        const fields = line.trim().split(' ');
        if (fields.length < 9 || !fields[2]!.includes('master')) continue;
        const owns = fields.slice(8).some((range) => {
          if (range.startsWith('[')) return false; // a slot being migrated
          const [lo, hi] = range.split('-').map(Number);
          return slot >= lo! && slot <= (hi ?? lo)!;
        });
        if (!owns) continue;
        const nodePort = Number(fields[1]!.split('@')[0]!.split(':').at(-1));
        const node = nodes.find((s) => s.port === nodePort);
        if (node !== undefined) return node;
      }
      throw new Error(`no master owns slot ${slot}`);
    },
    stop,
  };
}

export interface TestSentinel {
  /** The sentinel's own port (for `store.sentinel.nodes`). */
  port: number;
  readonly pid: number;
  /** The master's name, as this sentinel knows it. */
  name: string;
  /** SENTINEL get-master-addr-by-name: where the sentinel says the master is (null: it knows none). */
  masterAddr(): Promise<{ host: string; port: number } | null>;
  /** Graceful stop (SIGTERM, SIGKILL if it lingers); waits for the exit, then removes its directory. */
  stop(): Promise<void>;
}

/**
 * One redis-server --sentinel on a free loopback port monitoring `master` under `name` (quorum 1),
 * its config file (which it rewrites) and working directory in a fresh temporary directory.
 */
export async function startSentinel(master: RedisServer, name = 'wgmaster'): Promise<TestSentinel> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'wg-sentinel-'));
  dirs.add(dir);
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      'daemonize no',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${name} 5000`,
      '',
    ].join('\n'),
  );
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  running.add(child);
  child.once('exit', () => running.delete(child));

  const stop = async (): Promise<void> => {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  };

  const answered = await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`redis-server --sentinel exited with code ${child.exitCode}`);
      return ping(port);
    },
    { timeoutMs: START_TIMEOUT_MS, intervalMs: 25 },
  ).catch(async (err: unknown) => {
    await stop();
    throw err;
  });
  if (!answered) {
    await stop();
    throw new Error('redis-server --sentinel did not answer PING in time');
  }
  return {
    port,
    get pid() {
      return child.pid!;
    },
    name,
    async masterAddr() {
      const { stdout } = await run('redis-cli', ['-p', String(port), 'sentinel', 'get-master-addr-by-name', name], { timeout: 2000 });
      const [host, masterPort] = stdout.trim().split('\n');
      if (host === undefined || host === '' || masterPort === undefined) return null;
      return { host, port: Number(masterPort) };
    },
    stop,
  };
}

/** Stops a child by PID: SIGCONT and SIGTERM, SIGKILL if it lingers past STOP_TIMEOUT_MS; waits for the exit. */
async function stopChild(child: ChildProcess): Promise<void> {
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
}
