// The Redis store, shared by a fleet: each step of decide.ts is one Lua script (scripts.ts) run
// in one round trip on the server's clock. Standalone, Sentinel or Cluster through ioredis
// (client.ts: how a failure fails closed).
//
// New claims (begin) refuse to run while the store is not ready (readiness.ts); steps on a record
// already claimed (markSent, renew, finish, resolve) run whenever connected: they are fenced,
// find nothing on a store that lost the record, and settling what ran beats refusing it (a store
// refused for its eviction policy still lets writes in flight finish). The begin script itself
// compares the sentinel with the remembered value, so a store emptied without a disconnect
// (FLUSHALL, an eviction sweep, a failover without a reconnect) refuses the very next claim.
import { Cluster } from 'ioredis';
import type { Logger } from '../../observe/logger.js';
import {
  StoreUnavailableError,
  type BeginInput,
  type BeginResult,
  type BudgetCounter,
  type CooldownListener,
  type DeadLetter,
  type Fence,
  type FinishOutcome,
  type IdemRecord,
  type Leash,
  type NotReady,
  type Persistence,
  type RecordKey,
  type ResolveOutcome,
  type Seen,
  type StepResult,
  type Store,
} from '../store.js';
import { createRedisClient, describeFailure, scanDeadlineMs, unavailable, withDeadline, type Client, type StoreConfig } from './client.js';
import { beginArgs, CorruptRecordError, nullable, parseBeginReply, parseRecord, responseArg, stepResult, wholeMs } from './codec.js';
import * as breaker from './breaker-steps.js';
import { CooldownChannel } from './cooldown-channel.js';
import { approvals, budgetCounters, deadLetters, findByKeyHash, type Lookups } from './lookups.js';
import { CHECK_INTERVAL_MS, Readiness } from './readiness.js';
import { ReplayCache } from '../replay-cache.js';
import { approvalsKey, beginKeys, leashKeys, pointerKey, recordKeys, type KeySet } from './keys.js';
import { SCRIPTS, type ScriptRunner } from './scripts.js';
import { ScriptSender } from './script-sender.js';

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
  private readonly readiness: Readiness;
  private readonly cooldowns: CooldownChannel;
  /** Completed records this instance wrote: their replays make no round trip (null: off). */
  private readonly cache: ReplayCache | null;
  private readonly sender: ScriptSender;

  constructor(
    private readonly config: StoreConfig,
    options: RedisStoreOptions = {},
  ) {
    this.log = options.log;
    this.client = createRedisClient(config);
    // No fixed numberOfKeys: each call passes its own (a settling step names its record's leash keys).
    for (const [name, lua] of Object.entries(SCRIPTS)) this.client.defineCommand(name, { lua });
    this.scripts = this.client as unknown as ScriptRunner;
    this.readiness = new Readiness(this.client, config, this.log, options.checkIntervalMs ?? CHECK_INTERVAL_MS);
    // A failed first connection keeps retrying; its rejection is reported by the 'error' listener.
    this.client.connect().catch(() => undefined);
    this.cooldowns = new CooldownChannel(config, this.client);
    this.cache = config.replayCacheBytes > 0 ? new ReplayCache(config.replayCacheBytes) : null;
    this.sender = new ScriptSender(this.client, config);
  }

  private keys(key: RecordKey): KeySet {
    return recordKeys(this.config.keyPrefix, key, this.client instanceof Cluster);
  }

  /**
   * Turns every failure into StoreUnavailableError. One command needs no timer of ours (ioredis'
   * commandTimeout bounds it); work of several commands passes a deadline.
   */
  private async call<T>(op: string, work: () => Promise<T>, deadline?: number): Promise<T> {
    try {
      return await (deadline === undefined ? work() : withDeadline(work(), deadline));
    } catch (err) {
      throw unavailable(op, err);
    }
  }

  /** A step that starts an operation: refused while the store is not ready. */
  private step<T>(op: string, work: () => Promise<T>): Promise<T> {
    if (!this.readiness.ready())
      return Promise.reject(
        new StoreUnavailableError(`redis store not ready: ${this.readiness.refusalDetail()}`, { mayHaveApplied: false }),
      );
    return this.call(op, work);
  }

  async begin(input: BeginInput): Promise<BeginResult> {
    // Only while ready: a store that lost its data or cannot be reached refuses writes, replays included.
    const cached = this.cache !== null && this.readiness.ready() ? this.cache.replay(input) : null;
    if (cached !== null) return cached;
    const keys = this.keys(input.key);
    const redisKeys = beginKeys(keys, input);
    const args = beginArgs(input, this.readiness.sentinel());
    const { result, replicated } = await this.step('begin', async () => {
      const { reply, replicated } = await this.sender.writeStep('wgBeginBuffer', keys, redisKeys, args);
      if (Array.isArray(reply) && String(reply[0]) === 'amnesia') throw this.amnesia();
      return { result: parseBeginReply(reply, input), replicated };
    });
    if (!replicated && result.outcome === 'acquired') {
      // Replicas did not confirm the claim: a failover could forget it. Give it back and refuse.
      const { owner, epoch, leash } = result.record;
      try {
        await this.call('begin', () => this.sender.run('wgUnclaim', keys, this.settleKeys(keys, leash), [owner, String(epoch)]));
      } catch (err) {
        this.log?.warn({ store: 'redis', cause: describeFailure(err) }, 'could not release an unreplicated claim; its lease will lapse');
      }
      throw new StoreUnavailableError(`redis store begin failed: fewer than ${this.config.waitReplicas} replicas acknowledged`);
    }
    if (result.outcome === 'acquired') this.cache?.acquired(result.record);
    return result;
  }

  /** The begin script found another sentinel: not ready until a check (run now) says otherwise. */
  private amnesia(): StoreUnavailableError {
    this.readiness.sentinelLost();
    return new StoreUnavailableError(
      'redis store begin refused: the store sentinel is not the one this instance saw (the store lost data)',
      { mayHaveApplied: false },
    );
  }

  /** The record's three keys, then its leash's (scripts.ts): what a settling step touches. */
  private settleKeys(keys: KeySet, leash: Leash): string[] {
    return [keys.record, keys.resp, keys.dlq, ...leashKeys(keys, leash)];
  }

  async markSent(fence: Fence, leaseMs: number): Promise<StepResult> {
    const keys = this.keys(fence.key);
    const redisKeys = [keys.record, keys.resp, keys.dlq];
    return this.call('markSent', async () =>
      stepResult(await this.sender.run('wgMarkSent', keys, redisKeys, [fence.owner, String(fence.epoch), wholeMs(leaseMs)])),
    );
  }

  async renew(fence: Fence, leaseMs: number): Promise<StepResult> {
    const keys = this.keys(fence.key);
    const redisKeys = [keys.record, keys.resp, keys.dlq];
    return this.call('renew', async () =>
      stepResult(await this.sender.run('wgRenew', keys, redisKeys, [fence.owner, String(fence.epoch), wholeMs(leaseMs)])),
    );
  }

  async finish(fence: Fence, outcome: FinishOutcome): Promise<StepResult> {
    const sentAt = Date.now();
    let settled: StepResult = 'stale';
    try {
      settled = await this.finishStep(fence, outcome);
      return settled;
    } finally {
      // A finish that failed or was refused caches nothing (and forgets its pending record).
      this.cache?.finished(fence, outcome, sentAt, settled);
    }
  }

  private async finishStep(fence: Fence, outcome: FinishOutcome): Promise<StepResult> {
    const keys = this.keys(fence.key);
    const args: (string | Buffer)[] = [fence.owner, String(fence.epoch), outcome.kind];
    if (outcome.kind === 'complete') {
      args.push(
        String(outcome.status),
        nullable(outcome.requestId),
        responseArg(outcome.response),
        wholeMs(outcome.ttlSec * 1000),
        wholeMs(outcome.tombstoneSec * 1000),
      );
    } else if (outcome.kind === 'unknown') {
      args.push(nullable(outcome.status === null ? null : String(outcome.status)), nullable(outcome.requestId), outcome.reason);
    }
    const { result, replicated } = await this.call('finish', async () => {
      const { reply, replicated } = await this.sender.writeStep('wgFinish', keys, this.settleKeys(keys, fence.leash), args);
      return { result: stepResult(reply), replicated };
    });
    if (!replicated && result === 'ok') {
      throw new StoreUnavailableError(`redis store finish failed: fewer than ${this.config.waitReplicas} replicas acknowledged`);
    }
    return result;
  }

  async resolve(key: RecordKey, seen: Seen, outcome: ResolveOutcome): Promise<StepResult> {
    const keys = this.keys(key);
    const args: (string | Buffer)[] = [String(seen.epoch), outcome.kind];
    if (outcome.kind === 'executed') {
      args.push(
        String(outcome.status),
        responseArg(outcome.response),
        wholeMs(outcome.ttlSec * 1000),
        wholeMs(outcome.tombstoneSec * 1000),
      );
    }
    return this.call('resolve', async () => stepResult(await this.sender.run('wgResolve', keys, this.settleKeys(keys, seen.leash), args)));
  }

  async get(key: RecordKey): Promise<IdemRecord | null> {
    const keys = this.keys(key);
    return this.call('get', async () => {
      const reply = await this.scripts.wgGetBuffer(2, keys.record, keys.resp);
      if (reply === null) return null;
      if (!Array.isArray(reply)) throw new CorruptRecordError('get reply');
      return parseRecord(reply[0], reply[1]);
    });
  }

  findByKeyHash(keyHash: string, limit: number): Promise<DeadLetter[]> {
    return this.call('findByKeyHash', () => findByKeyHash(this.lookups(), keyHash, limit), scanDeadlineMs(this.config));
  }

  deadLetters(limit: number): Promise<DeadLetter[]> {
    return this.call('deadLetters', () => deadLetters(this.lookups(), limit), scanDeadlineMs(this.config));
  }

  budgetCounters(query: { scope: string | null; scopePrefix: string; buckets: readonly string[] }): Promise<BudgetCounter[]> {
    return this.call('budgetCounters', () => budgetCounters(this.lookups(), query), scanDeadlineMs(this.config));
  }

  private lookups(): Lookups {
    return { client: this.client, keyPrefix: this.config.keyPrefix, scripts: this.scripts, keys: (key) => this.keys(key) };
  }

  async latestOperation(key: RecordKey): Promise<string | null> {
    const keys = this.keys(key);
    return this.step('latest', () => this.client.get(pointerKey(keys, key.keyHash)));
  }

  async decideApproval(key: RecordKey, seen: Seen, verdict: 'approve' | 'deny' | 'expire'): Promise<StepResult> {
    const keys = this.keys(key);
    const redisKeys = [keys.record, keys.resp, keys.dlq, approvalsKey(keys), ...leashKeys(keys, seen.leash)];
    return this.call('approval', async () =>
      stepResult(await this.sender.run('wgApproval', keys, redisKeys, [String(seen.epoch), verdict])),
    );
  }

  approvals(limit: number): Promise<DeadLetter[]> {
    return this.call('approvals', () => approvals(this.lookups(), limit), scanDeadlineMs(this.config));
  }

  // ---- the breaker (DESIGN §10.5) ---------------------------------------------------------------

  pausedUntil(scope: string, upstream: string): Promise<number | null> {
    return this.call('paused', () => breaker.pausedUntil(this.lookups(), scope, upstream));
  }

  noteRefusal(scope: string, upstream: string, rule: { refusals: number; windowMs: number; pauseMs: number }): Promise<number | null> {
    return this.call('refusal', () => breaker.noteRefusal(this.lookups(), scope, upstream, rule));
  }

  resume(scope: string, upstreams: readonly string[]): Promise<boolean> {
    return this.call('resume', () => breaker.resume(this.lookups(), scope, upstreams));
  }

  // ---- readiness and cooldowns: their collaborators answer ------------------------------------

  ready(): boolean {
    return this.readiness.ready();
  }

  notReadyReason(): NotReady | null {
    return this.readiness.notReadyReason();
  }

  /** What the last check found about persistence ('unknown' before it ran). */
  persistence(): Persistence {
    return this.readiness.persistence();
  }

  /** Resolves true once ready (at once if it is), false after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<boolean> {
    return this.readiness.whenReady(timeoutMs);
  }

  announceCooldown(scope: string, upstream: string, delayMs: number): void {
    this.cooldowns.announce(scope, upstream, delayMs);
  }

  onCooldown(listener: CooldownListener): void {
    this.cooldowns.onCooldown(listener);
  }

  async close(): Promise<void> {
    if (this.readiness.isClosed()) return;
    this.cooldowns.close();
    this.readiness.close();
    this.client.disconnect();
  }
}

export function createRedisStore(config: StoreConfig, log?: Logger, options: Omit<RedisStoreOptions, 'log'> = {}): RedisStore {
  return new RedisStore(config, { ...options, log });
}
