// The Redis store, shared by a fleet: each step of decide.ts is one Lua script (scripts.ts) run
// in one round trip on the server's clock. Standalone, Sentinel or Cluster through ioredis.
//
// Failing closed (DESIGN §3.11–12):
// - ioredis never queues a command while disconnected (enableOfflineQueue: false), never resends
//   one whose connection dropped (maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false:
//   a resend would reach a restarted Redis before the sentinel check below). Every command is
//   bounded by commandTimeoutMs (ioredis' own timer), work of several commands (WAIT, scans) by a
//   deadline of its own. Any failure is a StoreUnavailableError whose message names the step and
//   a fixed cause (never a key, an argument or a body).
// - The sentinel: an instance remembers the value it saw (sentinel.ts has the rules). It is not
//   ready from the moment a connection closes until a check after reconnecting has passed, and it
//   checks again every second. New claims (begin) refuse to run while not ready; steps on a record
//   already claimed (markSent, renew, finish, resolve) run whenever connected: they are fenced,
//   find nothing on a store that lost the record, and settling what ran beats refusing it (a store
//   refused for its eviction policy still lets writes in flight finish). The begin script itself
//   compares the sentinel with the remembered value, so a store emptied without a disconnect
//   (FLUSHALL, an eviction sweep, a failover without a reconnect) refuses the very next claim. On
//   a Cluster every slot has its sentinel (slot-sentinels.ts): an emptied master cannot pass on
//   another master's.
// - Safety (safety.ts): each check reads INFO from every master; a store that can evict keys
//   fails writes closed, one that persists nothing is warned about.
import { randomUUID } from 'node:crypto';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { BEGIN, FINISH, GET, MARK_SENT, RENEW, RESOLVE, UNCLAIM } from './scripts.js';
import { judgeSafety, type NodeFacts } from './safety.js';
import { judgeSentinel, NOT_READY, sentinelAckKey, sentinelKey, type NotReadyReason, type SentinelFacts } from './sentinel.js';
import { allSlotSentinelKeys, slotSentinelKey, slotSentinelKeyOf } from './slot-sentinels.js';
import {
  StoreUnavailableError,
  type BeginInput, type BeginOutcome, type BeginResult, type CooldownListener, type DeadLetter, type Fence, type FinishOutcome, type IdemRecord, type NotReady, type Persistence,
  type Phase, type RecordKey, type RecordState, type ResolveOutcome, type StepResult, type Store, type StoredResponse,
} from './store.js';

export type StoreConfig = Config['store'];
type Client = Redis | Cluster;

/** Added to commandTimeoutMs for the hard deadline of work of several commands. */
const DEADLINE_MARGIN_MS = 100;
const CHECK_INTERVAL_MS = 1000;
const RECONNECT_MAX_DELAY_MS = 2000;
const SCAN_COUNT = 1000;
/** Bounds every SCAN walk (per node); a store still unscanned after that counts as not empty. */
const SCAN_MAX_ITERATIONS = 1000;
const CONNECT_WAIT_MS = 5000;

type ScriptName = 'wgBegin' | 'wgMarkSent' | 'wgRenew' | 'wgFinish' | 'wgResolve' | 'wgUnclaim' | 'wgGet';
type ScriptRunner = Record<ScriptName, (...args: string[]) => Promise<unknown>>;

const SCRIPTS: Record<ScriptName, { lua: string; keys: number }> = {
  wgBegin: { lua: BEGIN, keys: 4 },
  wgMarkSent: { lua: MARK_SENT, keys: 3 },
  wgRenew: { lua: RENEW, keys: 3 },
  wgFinish: { lua: FINISH, keys: 3 },
  wgResolve: { lua: RESOLVE, keys: 3 },
  wgUnclaim: { lua: UNCLAIM, keys: 3 },
  wgGet: { lua: GET, keys: 2 },
};

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
export function createRedisClient(config: StoreConfig): Client {
  const base = connectionOptions(config);
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
    return new Cluster(config.cluster.map((n) => ({ host: n.host, port: n.port })), options);
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
function describeFailure(err: unknown): string {
  if (err instanceof StoreUnavailableError) return err.message;
  const message = err instanceof Error ? err.message : '';
  const name = err instanceof Error ? err.name : '';
  if (/timed out/i.test(message) || name === 'DeadlineError') return 'timed out';
  if (name === 'MaxRetriesPerRequestError') return 'connection lost';
  if (/Stream isn't writeable|Connection is closed|isn't ready|enableOfflineQueue|ECONNREFUSED|ECONNRESET|EPIPE/i.test(message)) return 'not connected';
  const code = /^([A-Z]{3,12})\b/.exec(message)?.[1];
  if (code === 'CLUSTERDOWN') return 'cluster down';
  if (code !== undefined) return `redis error ${code}`;
  return 'unexpected reply';
}

function unavailable(op: string, err: unknown): StoreUnavailableError {
  if (err instanceof StoreUnavailableError) return err;
  return new StoreUnavailableError(`redis store ${op} failed: ${describeFailure(err)}`);
}

class DeadlineError extends Error {
  override readonly name = 'DeadlineError';
}

/** Settles with the promise, or rejects after `ms`; the loser's rejection is swallowed. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  promise.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError('deadline passed')), ms);
  });
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer));
}

function waitForClient(client: Client, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return withDeadline(new Promise<void>((resolve) => client.once('ready', () => resolve())), ms);
}

/** Every master to scan: the cluster's, or the one connection. */
function masters(client: Client): Redis[] {
  return client instanceof Cluster ? client.nodes('master') : [client];
}

/** One slot served by each master (its first), to read that master's sentinel. */
function slotPerMaster(cluster: Cluster): number[] {
  const seen = new Map<string, number>();
  cluster.slots.forEach((nodes, slot) => {
    const master = nodes?.[0];
    if (master !== undefined && !seen.has(master)) seen.set(master, slot);
  });
  return [...seen.values()];
}

/** Slot sentinels are written this many at a time (16,384 in all on a Cluster). */
const SENTINEL_WRITE_BATCH = 512;

/**
 * Writes the sentinel: the store's one key, or on a Cluster every slot's. `NX` leaves an existing
 * sentinel as it is (`existed`); a partial Cluster set (a master emptied) is completed with the
 * value the others hold only by an explicit ack, never here.
 */
async function writeSentinel(client: Client, keyPrefix: string, value: string, mode: 'NX' | 'force'): Promise<{ existed: boolean }> {
  const keys = client instanceof Cluster ? allSlotSentinelKeys(keyPrefix) : [sentinelKey(keyPrefix)];
  let existed = false;
  for (let i = 0; i < keys.length; i += SENTINEL_WRITE_BATCH) {
    const replies = await Promise.all(keys.slice(i, i + SENTINEL_WRITE_BATCH).map((key) => (mode === 'NX' ? client.set(key, value, 'NX') : client.set(key, value))));
    if (replies.some((r) => r !== 'OK')) existed = true;
  }
  return { existed };
}

async function scanOnce(node: Redis, pattern: string, type: string | null, visit: (keys: string[]) => boolean): Promise<void> {
  let cursor = '0';
  for (let i = 0; i < SCAN_MAX_ITERATIONS; i++) {
    const [next, keys] = type === null
      ? await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT)
      : await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT, 'TYPE', type);
    if (!visit(keys)) return;
    cursor = next;
    if (cursor === '0') return;
  }
  throw new StoreUnavailableError('redis store scan did not finish within its bound');
}

function nullable(value: string | null): string {
  return value === null ? '' : `=${value}`;
}

function wholeMs(ms: number): string {
  return String(Math.max(0, Math.round(ms)));
}

const STATES: readonly RecordState[] = ['in_flight', 'completed', 'outcome_unknown'];
const PHASES: readonly Phase[] = ['claimed', 'sent'];
const BEGIN_OUTCOMES: readonly BeginOutcome[] = ['acquired', 'replay', 'mismatch', 'in_use', 'unknown', 'expired', 'duplicate'];

class CorruptRecordError extends Error {
  override readonly name = 'CorruptRecordError';
}

function parseRecord(flat: unknown, resp: unknown): IdemRecord {
  if (!Array.isArray(flat)) throw new CorruptRecordError('record');
  const fields = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), String(flat[i + 1]));
  const text = (name: string): string => {
    const value = fields.get(name);
    if (value === undefined) throw new CorruptRecordError(name);
    return value;
  };
  const num = (name: string): number => {
    const value = Number(text(name));
    if (!Number.isFinite(value)) throw new CorruptRecordError(name);
    return value;
  };
  const state = text('state') as RecordState;
  const phase = text('phase') as Phase;
  if (!STATES.includes(state) || !PHASES.includes(phase)) throw new CorruptRecordError('state');
  const status = fields.get('status');
  return {
    state,
    phase,
    fingerprint: text('fp'),
    upstreamKey: text('ukey'),
    owner: text('owner'),
    epoch: num('epoch'),
    leaseUntil: num('lease'),
    attempts: num('attempts'),
    createdAt: num('created'),
    updatedAt: num('updated'),
    responseUntil: num('respUntil'),
    status: status === undefined ? null : Number(status),
    requestId: fields.get('reqId') ?? null,
    response: typeof resp === 'string' ? (JSON.parse(resp) as StoredResponse) : null,
    reason: fields.get('reason') ?? null,
    meta: JSON.parse(text('meta')) as IdemRecord['meta'],
  };
}

function stepResult(reply: unknown): StepResult {
  if (reply === 'ok' || reply === 'stale') return reply;
  throw new CorruptRecordError('step reply');
}

interface KeySet {
  record: string;
  resp: string;
  dlq: string;
  member: string;
  /** The sentinel the begin script checks: the store's one, or on a Cluster the record's slot's. */
  sentinel: string;
}

export interface RedisStoreOptions {
  log?: Logger;
  /** How often the sentinel is checked while connected (tests shorten it). */
  checkIntervalMs?: number;
}

export class RedisStore implements Store {
  readonly kind = 'redis';
  private readonly client: Client;
  private readonly scripts: ScriptRunner;
  private readonly log: Logger | undefined;
  private readonly timer: NodeJS.Timeout;
  private remembered: string | null = null;
  private isReady = false;
  private reason: NotReady | null = { code: 'connecting', detail: 'connecting to redis' };
  private persistenceMode: Persistence | null = null;
  /** What the last check found about eviction (logged when it changes). */
  private evicts: string | null = null;
  /** Bumped whenever a connection closes: a check begun before that is void. */
  private generation = 0;
  private checking = false;
  private recheck = false;
  private closed = false;
  /** A second connection: a subscribed Redis connection can run nothing else. */
  private readonly subscriber: Client;
  private readonly cooldownListeners: CooldownListener[] = [];
  private waiters = new Set<(ready: boolean) => void>();

  constructor(private readonly config: StoreConfig, options: RedisStoreOptions = {}) {
    this.log = options.log;
    this.client = createRedisClient(config);
    for (const [name, script] of Object.entries(SCRIPTS)) this.client.defineCommand(name, { lua: script.lua, numberOfKeys: script.keys });
    this.scripts = this.client as unknown as ScriptRunner;
    this.watch(this.client);
    if (this.client instanceof Cluster) this.client.on('+node', (node: Redis) => this.watch(node));
    this.timer = setInterval(() => this.requestCheck(), options.checkIntervalMs ?? CHECK_INTERVAL_MS).unref();
    // A failed first connection keeps retrying; its rejection is reported by the 'error' listener.
    this.client.connect().catch(() => undefined);
    this.subscriber = this.listenForCooldowns();
  }

  private watch(emitter: Client): void {
    emitter.on('ready', () => this.requestCheck());
    for (const event of ['close', 'end', 'reconnecting']) emitter.on(event, () => this.connectionLost());
    emitter.on('error', (err: unknown) => this.log?.debug({ store: 'redis', cause: describeFailure(err) }, 'redis connection error'));
  }

  private connectionLost(): void {
    this.generation++;
    this.setReady(false, { code: 'disconnected', detail: 'the connection to redis closed; waiting to reconnect and check the sentinel' });
  }

  /**
   * Logs what an operator must see once: readiness lost or regained, and each sentinel verdict.
   * While Redis is down the connectivity reason flaps with every reconnect attempt: that is debug.
   */
  private setReady(ready: boolean, reason: NotReady | null): void {
    if (this.closed) return;
    const wasReady = this.isReady;
    const previous = this.reason?.detail;
    this.isReady = ready;
    this.reason = reason;
    if (ready) {
      if (!wasReady) {
        this.log?.info({ store: 'redis' }, 'store ready');
        for (const wake of this.waiters) wake(true);
        this.waiters.clear();
      }
      return;
    }
    if (reason?.detail === previous && !wasReady) return;
    // Connectivity flaps with every reconnect attempt; a verdict on the store's data is news.
    const verdict = reason !== null && !['connecting', 'disconnected', 'unreachable'].includes(reason.code);
    if (wasReady || verdict) this.log?.warn({ store: 'redis', reason: reason?.code, detail: reason?.detail }, 'store not ready: writes fail closed');
    else this.log?.debug({ store: 'redis', reason: reason?.code }, 'store still not ready');
  }

  // ---- the sentinel check -------------------------------------------------------------------

  /** Runs a check now, or right after the one running (whose answer a reconnect may have voided). */
  private requestCheck(): void {
    if (this.closed) return;
    if (this.checking) {
      this.recheck = true;
      return;
    }
    this.checking = true;
    void this.check().finally(() => {
      this.checking = false;
      if (this.recheck) {
        this.recheck = false;
        this.requestCheck();
      }
    });
  }

  private async check(): Promise<void> {
    const generation = this.generation;
    try {
      const safety = await withDeadline(this.safety(), this.scanDeadline());
      if (generation !== this.generation || this.closed) return;
      if (safety !== null) return this.setReady(false, safety);
      const verdict = await withDeadline(this.judge(), 4 * (this.config.commandTimeoutMs + DEADLINE_MARGIN_MS) + 1000);
      if (generation !== this.generation || this.closed) return;
      if (verdict.kind === 'ready') {
        if (this.remembered !== null && this.remembered !== verdict.adopt) {
          this.log?.warn({ store: 'redis' }, 'store sentinel changed and was acknowledged: adopting it');
        }
        this.remembered = verdict.adopt;
        this.setReady(true, null);
      } else {
        this.setReady(false, NOT_READY[verdict.reason]);
      }
    } catch (err) {
      if (generation === this.generation) this.setReady(false, { code: 'unreachable', detail: `redis unreachable (${describeFailure(err)})` });
    }
  }

  /** Reads every master's eviction policy and persistence; a refusal, or null when safe. */
  private async safety(): Promise<NotReady | null> {
    const facts: NodeFacts[] = [];
    for (const node of masters(this.client)) {
      const info = await node.info('memory', 'persistence');
      // Without AOF, only `CONFIG GET save` tells snapshots from nothing; managed Redis refuses CONFIG.
      const save = /^aof_enabled:1\r?$/m.test(info)
        ? null
        : await node.config('GET', 'save').then((reply) => (Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : null), () => null);
      facts.push({ info, save });
    }
    const verdict = judgeSafety(facts, this.config.allowEviction);
    if (verdict.persistence !== this.persistenceMode) {
      this.persistenceMode = verdict.persistence;
      if (verdict.persistence !== 'aof') {
        this.log?.warn(
          { store: 'redis', persistence: verdict.persistence },
          verdict.persistence === 'none'
            ? 'store persistence: redis persists nothing; a restart forgets every claim and writes fail closed until `writeguard store ack`; run redis with appendonly yes'
            : 'store persistence: redis has no AOF; a crash loses the claims made since its last snapshot; run redis with appendonly yes',
        );
      }
    }
    if (verdict.evicts !== this.evicts) {
      this.evicts = verdict.evicts;
      if (verdict.evicts !== null && verdict.refuse === null) {
        this.log?.warn({ store: 'redis', evicts: verdict.evicts }, 'store can evict keys, accepted because store.allowEviction is set: an evicted record lets its write run again');
      }
    }
    return verdict.refuse;
  }

  /**
   * The sentinel as the store holds it: standalone, its one key; on a Cluster, one slot's key per
   * master (a value only when they all agree; '' — never a sentinel — when they differ).
   */
  private async sentinelValue(): Promise<string | null> {
    if (!(this.client instanceof Cluster)) return this.client.get(sentinelKey(this.config.keyPrefix));
    const values = new Set<string | null>();
    for (const slot of slotPerMaster(this.client)) values.add(await this.client.get(slotSentinelKeyOf(this.config.keyPrefix, slot)));
    if (values.size === 1) return [...values][0]!;
    return values.has(null) ? null : '';
  }

  private async judge(): Promise<{ kind: 'ready'; adopt: string } | { kind: 'not_ready'; reason: NotReadyReason }> {
    const facts: SentinelFacts = { remembered: this.remembered, value: await this.sentinelValue(), initOnEmpty: this.config.initOnEmpty };
    for (let step = 0; step < 4; step++) {
      const verdict = judgeSentinel(facts);
      switch (verdict.kind) {
        case 'ready':
        case 'not_ready':
          return verdict;
        case 'need':
          if (verdict.fact === 'ack') facts.ack = await this.client.get(sentinelAckKey(this.config.keyPrefix));
          else facts.empty = await this.storeIsEmpty();
          break;
        case 'init':
          if (!(await writeSentinel(this.client, this.config.keyPrefix, randomUUID(), 'NX')).existed) this.log?.info({ store: 'redis' }, 'empty store initialised with a new sentinel');
          facts.value = await this.sentinelValue();
          break;
      }
    }
    return { kind: 'not_ready', reason: 'store_not_initialised' };
  }

  /** No key at all under the prefix, on any master. */
  private async storeIsEmpty(): Promise<boolean> {
    let found = false;
    for (const node of masters(this.client)) {
      await scanOnce(node, `${this.config.keyPrefix}*`, null, (keys) => {
        found = keys.length > 0;
        return !found;
      });
      if (found) return false;
    }
    return true;
  }

  // ---- steps --------------------------------------------------------------------------------

  private keys(key: RecordKey): KeySet {
    const tag = `${this.config.keyPrefix}{${key.scope}}`;
    const record = `${tag}:${key.upstream}:${key.keyHash}`;
    const sentinel = this.client instanceof Cluster ? slotSentinelKey(this.config.keyPrefix, key.scope) : sentinelKey(this.config.keyPrefix);
    return { record, resp: `${record}:resp`, dlq: `${tag}:dlq`, member: `${key.upstream}:${key.keyHash}`, sentinel };
  }

  /**
   * Turns every failure into StoreUnavailableError. One command needs no timer of ours (ioredis'
   * commandTimeout bounds it); work of several commands passes a deadline.
   */
  private async call<T>(op: string, work: () => Promise<T>, deadlineMs?: number): Promise<T> {
    try {
      return await (deadlineMs === undefined ? work() : withDeadline(work(), deadlineMs));
    } catch (err) {
      throw unavailable(op, err);
    }
  }

  /** The deadline of work that may take `extraMs` beyond one command. */
  private deadline(extraMs: number): number {
    return this.config.commandTimeoutMs + DEADLINE_MARGIN_MS + extraMs;
  }

  /** Walks over every master: a budget of their own. */
  private scanDeadline(): number {
    return this.deadline(Math.max(5000, 10 * this.config.commandTimeoutMs));
  }

  /** A step that starts an operation: refused while the store is not ready. */
  private step<T>(op: string, work: () => Promise<T>): Promise<T> {
    if (!this.isReady) return Promise.reject(new StoreUnavailableError(`redis store not ready: ${this.reason?.detail ?? 'unknown'}`, { mayHaveApplied: false }));
    return this.call(op, work);
  }

  private runScript(name: ScriptName, keys: KeySet, args: string[]): Promise<unknown> {
    return this.scripts[name](...this.scriptKeys(name, keys), ...args);
  }

  /** KEYS then ARGV[1] (the dlq member); begin also reads its slot's sentinel. */
  private scriptKeys(name: ScriptName, keys: KeySet): string[] {
    if (name === 'wgBegin') return [keys.record, keys.resp, keys.dlq, keys.sentinel, keys.member];
    return [keys.record, keys.resp, keys.dlq, keys.member];
  }

  /** The script, then WAIT on the same connection (one round trip); acks -1 when WAIT itself failed. */
  private async runScriptAndWait(name: ScriptName, keys: KeySet, args: string[]): Promise<{ reply: unknown; acks: number }> {
    const pipeline = this.client.pipeline();
    (pipeline as unknown as ScriptRunner)[name](...this.scriptKeys(name, keys), ...args);
    pipeline.wait(this.config.waitReplicas, this.config.waitTimeoutMs);
    const results = await pipeline.exec();
    const [first, second] = results ?? [];
    if (first === undefined || second === undefined) throw new Error('Connection is closed.');
    if (first[0] !== null) throw first[0];
    return { reply: first[1], acks: second[0] === null ? Number(second[1]) : -1 };
  }

  private async writeStep(name: ScriptName, keys: KeySet, args: string[]): Promise<{ reply: unknown; replicated: boolean }> {
    if (this.config.waitReplicas === 0) return { reply: await this.runScript(name, keys, args), replicated: true };
    const { reply, acks } = await withDeadline(this.runScriptAndWait(name, keys, args), this.deadline(this.config.waitTimeoutMs));
    return { reply, replicated: acks >= this.config.waitReplicas };
  }

  async begin(input: BeginInput): Promise<BeginResult> {
    const keys = this.keys(input.key);
    const args = [
      input.fingerprint, input.upstreamKey, input.owner, wholeMs(input.leaseMs), input.mode, input.reclaimUnknown ? '1' : '0', JSON.stringify(input.meta),
      this.remembered ?? '',
    ];
    const { result, replicated } = await this.step('begin', async () => {
      const { reply, replicated } = await this.writeStep('wgBegin', keys, args);
      if (Array.isArray(reply) && reply[0] === 'amnesia') throw this.amnesia();
      if (!Array.isArray(reply) || !BEGIN_OUTCOMES.includes(reply[0] as BeginOutcome)) throw new CorruptRecordError('begin reply');
      return { result: { outcome: reply[0] as BeginOutcome, record: parseRecord(reply[1], reply[2]) }, replicated };
    });
    if (!replicated && result.outcome === 'acquired') {
      // Replicas did not confirm the claim: a failover could forget it. Give it back and refuse.
      try {
        await this.call('begin', () => this.runScript('wgUnclaim', keys, [result.record.owner, String(result.record.epoch)]));
      } catch (err) {
        this.log?.warn({ store: 'redis', cause: describeFailure(err) }, 'could not release an unreplicated claim; its lease will lapse');
      }
      throw new StoreUnavailableError(`redis store begin failed: fewer than ${this.config.waitReplicas} replicas acknowledged`);
    }
    return result;
  }

  /** The begin script found another sentinel: not ready until a check (run now) says otherwise. */
  private amnesia(): StoreUnavailableError {
    this.generation++;
    this.setReady(false, NOT_READY.sentinel_missing);
    this.requestCheck();
    return new StoreUnavailableError('redis store begin refused: the store sentinel is not the one this instance saw (the store lost data)', { mayHaveApplied: false });
  }

  async markSent(fence: Fence, leaseMs: number): Promise<StepResult> {
    const keys = this.keys(fence.key);
    return this.call('markSent', async () => stepResult(await this.runScript('wgMarkSent', keys, [fence.owner, String(fence.epoch), wholeMs(leaseMs)])));
  }

  async renew(fence: Fence, leaseMs: number): Promise<StepResult> {
    const keys = this.keys(fence.key);
    return this.call('renew', async () => stepResult(await this.runScript('wgRenew', keys, [fence.owner, String(fence.epoch), wholeMs(leaseMs)])));
  }

  async finish(fence: Fence, outcome: FinishOutcome): Promise<StepResult> {
    const keys = this.keys(fence.key);
    const args = [fence.owner, String(fence.epoch), outcome.kind];
    if (outcome.kind === 'complete') {
      args.push(
        String(outcome.status), nullable(outcome.requestId), nullable(outcome.response === null ? null : JSON.stringify(outcome.response)),
        wholeMs(outcome.ttlSec * 1000), wholeMs(outcome.tombstoneSec * 1000),
      );
    } else if (outcome.kind === 'unknown') {
      args.push(nullable(outcome.status === null ? null : String(outcome.status)), nullable(outcome.requestId), outcome.reason);
    }
    const { result, replicated } = await this.call('finish', async () => {
      const { reply, replicated } = await this.writeStep('wgFinish', keys, args);
      return { result: stepResult(reply), replicated };
    });
    if (!replicated && result === 'ok') {
      throw new StoreUnavailableError(`redis store finish failed: fewer than ${this.config.waitReplicas} replicas acknowledged`);
    }
    return result;
  }

  async resolve(key: RecordKey, epoch: number, outcome: ResolveOutcome): Promise<StepResult> {
    const keys = this.keys(key);
    const args = [String(epoch), outcome.kind];
    if (outcome.kind === 'executed') {
      args.push(String(outcome.status), outcome.response === null ? '' : JSON.stringify(outcome.response), wholeMs(outcome.ttlSec * 1000), wholeMs(outcome.tombstoneSec * 1000));
    }
    return this.call('resolve', async () => stepResult(await this.runScript('wgResolve', keys, args)));
  }

  async get(key: RecordKey): Promise<IdemRecord | null> {
    const keys = this.keys(key);
    return this.call('get', async () => {
      const reply = await this.scripts.wgGet(keys.record, keys.resp);
      if (reply === null) return null;
      if (!Array.isArray(reply)) throw new CorruptRecordError('get reply');
      return parseRecord(reply[0], reply[1]);
    });
  }

  async findByKeyHash(keyHash: string, limit: number): Promise<DeadLetter[]> {
    // Hex only: nothing in it can act as a SCAN glob.
    if (!/^[0-9a-f]{16,64}$/.test(keyHash) || limit <= 0) return [];
    const prefix = this.config.keyPrefix;
    return this.call('findByKeyHash', async () => {
      const recordKeys: string[] = [];
      for (const node of masters(this.client)) {
        await scanOnce(node, `${prefix}{*}:*:${keyHash}`, 'hash', (keys) => {
          recordKeys.push(...keys);
          return recordKeys.length < limit;
        });
      }
      const found: DeadLetter[] = [];
      for (const recordKey of recordKeys.slice(0, limit)) {
        // `${prefix}{scope}:upstream:hash`: the scope never holds '}', upstream names never hold ':'.
        const close = recordKey.indexOf('}:', prefix.length);
        const upstream = recordKey.slice(close + 2, recordKey.length - keyHash.length - 1);
        const key = { scope: recordKey.slice(prefix.length + 1, close), upstream, keyHash };
        const reply = await this.scripts.wgGet(recordKey, `${recordKey}:resp`);
        if (Array.isArray(reply)) found.push({ key, record: parseRecord(reply[0], reply[1]) });
      }
      return found;
    }, this.scanDeadline());
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    if (limit <= 0) return [];
    const prefix = this.config.keyPrefix;
    const suffix = '}:dlq';
    return this.call('deadLetters', async () => {
      const dlqKeys = new Set<string>();
      for (const node of masters(this.client)) {
        await scanOnce(node, `${prefix}*:dlq`, 'zset', (keys) => {
          for (const k of keys) if (k.startsWith(`${prefix}{`) && k.endsWith(suffix)) dlqKeys.add(k);
          return true;
        });
      }
      const candidates: { key: RecordKey; score: number }[] = [];
      for (const dlqKey of dlqKeys) {
        const scope = dlqKey.slice(prefix.length + 1, dlqKey.length - suffix.length);
        const flat = await this.client.zrange(dlqKey, 0, limit - 1, 'WITHSCORES');
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const member = flat[i]!;
          const colon = member.indexOf(':');
          if (colon <= 0) continue;
          candidates.push({ key: { scope, upstream: member.slice(0, colon), keyHash: member.slice(colon + 1) }, score: Number(flat[i + 1]) });
        }
      }
      candidates.sort((a, b) => a.score - b.score);
      const letters: DeadLetter[] = [];
      for (const { key } of candidates.slice(0, limit)) {
        const keys = this.keys(key);
        const reply = await this.scripts.wgGet(keys.record, keys.resp);
        if (!Array.isArray(reply)) continue;
        const record = parseRecord(reply[0], reply[1]);
        if (record.state === 'outcome_unknown') letters.push({ key, record });
      }
      return letters.sort((a, b) => a.record.updatedAt - b.record.updatedAt);
    }, this.scanDeadline());
  }

  ready(): boolean {
    return this.isReady && !this.closed;
  }

  notReadyReason(): NotReady | null {
    if (this.ready()) return null;
    return this.closed ? { code: 'closed', detail: 'the store is closed' } : this.reason;
  }

  /** What the last check found about persistence ('unknown' before it ran). */
  persistence(): Persistence {
    return this.persistenceMode ?? 'unknown';
  }

  async latestOperation(key: RecordKey): Promise<string | null> {
    const latest = `${this.keys(key).record}:latest`;
    return this.step('latest', () => this.client.get(latest));
  }

  async setLatestOperation(key: RecordKey, operationKey: string, ttlMs: number): Promise<void> {
    const latest = `${this.keys(key).record}:latest`;
    await this.step('latest', () => this.client.set(latest, operationKey, 'PX', Math.max(1, Math.round(ttlMs))));
  }

  /** Resolves true once ready (at once if it is), false after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<boolean> {
    if (this.ready()) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      const wake = (ready: boolean): void => {
        clearTimeout(timer);
        resolve(ready);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(wake);
        resolve(false);
      }, timeoutMs);
      this.waiters.add(wake);
    });
  }

  // ---- cooldowns, shared by pub/sub: no round trip on the request path ---------------------------

  private cooldownChannel(): string {
    return `${this.config.keyPrefix}cooldown`;
  }

  private listenForCooldowns(): Client {
    const subscriber = createRedisClient(this.config);
    subscriber.on('error', () => undefined); // the main connection reports outages
    // Subscribed again on every (re)connect: a resubscribe is harmless, a missed one would be silent.
    subscriber.on('ready', () => void subscriber.subscribe(this.cooldownChannel()).catch(() => undefined));
    subscriber.on('message', (_channel: string, message: string) => {
      try {
        const { s, u, d } = JSON.parse(message) as { s: unknown; u: unknown; d: unknown };
        if (typeof s === 'string' && typeof u === 'string' && typeof d === 'number') for (const listener of this.cooldownListeners) listener(s, u, d);
      } catch {
        // not ours
      }
    });
    subscriber.connect().catch(() => undefined);
    return subscriber;
  }

  announceCooldown(scope: string, upstream: string, delayMs: number): void {
    this.client.publish(this.cooldownChannel(), JSON.stringify({ s: scope, u: upstream, d: delayMs })).catch(() => undefined);
  }

  onCooldown(listener: CooldownListener): void {
    this.cooldownListeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.subscriber.disconnect();
    this.closed = true;
    this.isReady = false;
    clearInterval(this.timer);
    for (const wake of this.waiters) wake(false);
    this.waiters.clear();
    this.client.disconnect();
  }
}

export function createRedisStore(config: StoreConfig, log?: Logger, options: Omit<RedisStoreOptions, 'log'> = {}): RedisStore {
  return new RedisStore(config, { ...options, log });
}

// ---- operator commands (writeguard store init|ack) -------------------------------------------

async function withClient<T>(config: StoreConfig, op: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = createRedisClient(config);
  client.on('error', () => undefined);
  client.connect().catch(() => undefined);
  try {
    await waitForClient(client, Math.max(CONNECT_WAIT_MS, config.commandTimeoutMs));
    // A Cluster's sentinels are one per slot: 16,384 writes get a budget of their own.
    return await withDeadline(work(client), 3 * (config.commandTimeoutMs + DEADLINE_MARGIN_MS) + (config.cluster === null ? 0 : 30_000));
  } catch (err) {
    throw unavailable(op, err);
  } finally {
    client.disconnect();
  }
}

/**
 * Creates the sentinel unless there is one. On a Cluster where some slots kept theirs and others
 * lost them (a master emptied), init refuses: that is a loss to acknowledge, not a new store.
 */
export function initStore(config: StoreConfig): Promise<{ existed: boolean }> {
  return withClient(config, 'init', async (client) => {
    if (client instanceof Cluster) {
      const present = new Set(await Promise.all(slotPerMaster(client).map((slot) => client.get(slotSentinelKeyOf(config.keyPrefix, slot)))));
      if (present.size > 1) throw new StoreUnavailableError('redis store init refused: some masters hold a sentinel and others none (a master lost its data); check, then run `writeguard store ack`');
      const [value] = [...present];
      if (value !== null && value !== undefined) return { existed: true };
    }
    return writeSentinel(client, config.keyPrefix, randomUUID(), 'NX');
  });
}

/** Accepts the store as it is now: a new sentinel that every running instance adopts. */
export function ackStore(config: StoreConfig): Promise<{ value: string }> {
  return withClient(config, 'ack', async (client) => {
    const value = randomUUID();
    // The ack first: an instance that sees the new sentinel finds it acknowledged.
    await client.set(sentinelAckKey(config.keyPrefix), value);
    await writeSentinel(client, config.keyPrefix, value, 'force');
    return { value };
  });
}
