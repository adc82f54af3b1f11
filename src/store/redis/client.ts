// Connections to Redis (standalone, Sentinel or Cluster through ioredis), and how their failures
// reach the caller. Failing closed (DESIGN §3.11):
// - ioredis never queues a command while disconnected (enableOfflineQueue: false), never resends
//   one whose connection dropped (maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false:
//   a resend would reach a restarted Redis before the sentinel check of readiness.ts). Every
//   command is bounded by commandTimeoutMs (ioredis' own timer), work of several commands (WAIT,
//   scans) by a deadline of its own. Any failure is a StoreUnavailableError whose message names
//   the step and a fixed cause (never a key, an argument or a body).
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../../config/schema.js';
import { StoreUnavailableError } from '../store.js';

export type StoreConfig = Config['store'];
export type Client = Redis | Cluster;

/** Added to commandTimeoutMs for the hard deadline of work of several commands. */
export const DEADLINE_MARGIN_MS = 100;
const RECONNECT_MAX_DELAY_MS = 2000;
const SCAN_COUNT = 1000;
/** Bounds every SCAN walk (per node); a store still unscanned after that counts as not empty. */
const SCAN_MAX_ITERATIONS = 1000;

function reconnectDelayMs(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 8), RECONNECT_MAX_DELAY_MS);
}

function connectionOptions(config: StoreConfig): RedisOptions {
  return {
    enableOfflineQueue: false,
    enableReadyCheck: true,
    commandTimeout: config.commandTimeoutMs,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: Math.max(config.commandTimeoutMs, 1000),
    retryStrategy: reconnectDelayMs,
    // Connected by the caller once its listeners are attached.
    lazyConnect: true,
  };
}

/** Credentials, database and TLS from `url` (for cluster and sentinel nodes, which take no URL). */
function urlOptions(url: string): RedisOptions {
  const parsed = new URL(url);
  const options: RedisOptions = {};
  if (parsed.username !== '') options.username = decodeURIComponent(parsed.username);
  if (parsed.password !== '') options.password = decodeURIComponent(parsed.password);
  const db = parsed.pathname.replace(/^\//, '');
  if (/^\d+$/.test(db)) options.db = Number(db);
  if (parsed.protocol === 'rediss:') options.tls = {};
  return options;
}

/** A client for the configured topology, not yet connected (call `connect()`); it reconnects forever. */
export function createRedisClient(config: StoreConfig, over: RedisOptions = {}): Client {
  const base = { ...connectionOptions(config), ...over };
  if (config.cluster !== null) {
    const { db: _db, ...fromUrl } = urlOptions(config.url);
    const options: ClusterOptions = {
      redisOptions: { ...base, ...fromUrl },
      enableOfflineQueue: false,
      enableReadyCheck: true,
      scaleReads: 'master',
      clusterRetryStrategy: reconnectDelayMs,
      // Replies that prove a command did not run (MOVED, ASK, TRYAGAIN, CLUSTERDOWN) are retried;
      // a command whose connection closed is not (it may have run): that fails closed.
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      retryDelayOnFailover: 0,
      maxRedirections: 8,
      lazyConnect: true,
    };
    return new Cluster(
      config.cluster.map((n) => ({ host: n.host, port: n.port })),
      options,
    );
  }
  if (config.sentinel !== null) {
    return new Redis({
      ...base,
      ...urlOptions(config.url),
      sentinels: config.sentinel.nodes.map((n) => ({ host: n.host, port: n.port })),
      name: config.sentinel.name,
      sentinelRetryStrategy: reconnectDelayMs,
    });
  }
  return new Redis(config.url, base);
}

/** A fixed description of a failure: never the error's own text, which may carry command arguments. */
export function describeFailure(err: unknown): string {
  if (err instanceof StoreUnavailableError) return err.message;
  const message = err instanceof Error ? err.message : '';
  const name = err instanceof Error ? err.name : '';
  if (/timed out/i.test(message) || name === 'DeadlineError') return 'timed out';
  if (name === 'MaxRetriesPerRequestError') return 'connection lost';
  if (/Stream isn't writeable|Connection is closed|isn't ready|enableOfflineQueue|ECONNREFUSED|ECONNRESET|EPIPE/i.test(message))
    return 'not connected';
  const code = /^([A-Z]{3,12})\b/.exec(message)?.[1];
  if (code === 'CLUSTERDOWN') return 'cluster down';
  if (code !== undefined) return `redis error ${code}`;
  return 'unexpected reply';
}

export function unavailable(op: string, err: unknown): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  return new StoreUnavailableError(`redis store ${op} failed: ${describeFailure(err)}`);
}

class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/** Settles with the promise, or rejects after `ms`; the loser's rejection is swallowed. */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  promise.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError('deadline passed')), ms);
  });
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}

/** The deadline of work that may take `extraMs` beyond one command. */
export function deadlineMs(config: StoreConfig, extraMs: number): number {
  return config.commandTimeoutMs + DEADLINE_MARGIN_MS + extraMs;
}

/** Walks over every master: a budget of their own. */
export function scanDeadlineMs(config: StoreConfig): number {
  return deadlineMs(config, Math.max(5000, 10 * config.commandTimeoutMs));
}

export function waitForClient(client: Client, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return withDeadline(new Promise<void>((resolve) => client.once('ready', () => resolve())), ms);
}

/** Every master to scan: the cluster's, or the one connection. */
export function masters(client: Client): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** One slot served by each master (its first), to read that master's sentinel. */
export function slotPerMaster(cluster: Cluster): number[] {
  const seen = new Map<string, number>();
  cluster.slots.forEach((nodes, slot) => {
    const master = nodes?.[0];
    if (master !== undefined && !seen.has(master)) seen.set(master, slot);
  });
  return [...seen.values()];
}

export async function scanOnce(node: Redis, pattern: string, type: string | null, visit: (keys: string[]) => boolean): Promise<void> {
  let cursor = '0';
  for (let i = 0; i < SCAN_MAX_ITERATIONS; i++) {
    const [next, keys] =
      type === null
        ? await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT)
        : await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT, 'TYPE', type);
    if (!visit(keys)) return;
    cursor = next;
    if (cursor === '0') return;
  }
  throw new StoreUnavailableError('redis store scan did not finish within its bound');
}

/**
 * Commands sent in one turn of the event loop leave in one socket write: the first corks the
 * connection, setImmediate (once the turn's I/O callbacks have run) uncorks it. Under load the steps
 * of many writes are sent together: one syscall for Node and one read for Redis instead of one per
 * command. Unlike ioredis' auto-pipelining, nothing
 * about a command changes (no pipeline object, same promise). A Cluster's commands go to per-node
 * connections: left as they are.
 */
export function coalescingWrites(client: Client): () => void {
  if (client instanceof Cluster) return () => undefined;
  let corked = false;
  return () => {
    const { stream } = client;
    if (corked || stream === undefined || !stream.writable) return;
    corked = true;
    stream.cork();
    setImmediate(() => {
      corked = false;
      stream.uncork();
    });
  };
}
