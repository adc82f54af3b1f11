// Helpers for the store-safety tests (eviction, persistence, emptied stores, FLUSHALL, cluster loss):
// admin readiness and metrics, raw Redis access,
// and a three-master Redis Cluster on loopback. Every wait here is bounded in count and time.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startRedis, type RedisServer } from './redis.js';

const run = promisify(execFile);

/** Polls (at most every 50 ms, for at most `timeoutMs`) until `check` holds; false if it never did. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    if (await check()) return true;
    await sleep(50);
  }
  return check();
}

export interface Readiness {
  status: number;
  body: { ready?: boolean; reason?: string; detail?: string } & Record<string, unknown>;
}

export async function readyz(adminUrl: string): Promise<Readiness> {
  const res = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let body: Readiness['body'] = {};
  try {
    body = JSON.parse(text) as Readiness['body'];
  } catch {
    body = { unparsed: text };
  }
  return { status: res.status, body };
}

/** The value of an unlabelled (or first labelled) sample of `name` on /metrics; null when absent. */
export async function metric(adminUrl: string, name: string): Promise<number | null> {
  const text = await (await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return match === null ? null : Number(match[1]);
}

/** A plain connection for the test to act on Redis directly (FLUSHALL, CONFIG SET, fills). */
export function rawRedis(url: string, raws: Redis[]): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 100, commandTimeout: 5000 });
  client.on('error', () => undefined);
  raws.push(client);
  return client;
}

export interface TestCluster {
  nodes: RedisServer[];
  /** Seed nodes for `store.cluster`. */
  seeds: { host: string; port: number }[];
  /** The node (of `nodes`) whose master owns the hash slot of `key`. */
  ownerOf(key: string): Promise<RedisServer>;
  stop(): Promise<void>;
}

/** Three masters, no replicas, built as store-redis-cluster.test.ts builds its cluster. */
export async function startCluster(): Promise<TestCluster> {
  const nodes: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    for (const s of nodes) await s.stop();
  };
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }));
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 10_000 });
    const ok = await until(async () => {
      const states = await Promise.all(nodes.map((s) => run('redis-cli', ['-p', String(s.port), 'cluster', 'info'], { timeout: 2000 }).then((r) => r.stdout)));
      return states.every((info) => info.includes('cluster_state:ok'));
    }, 10_000);
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
