// Whether the Redis store may take new claims (DESIGN §3.11–12), checked on every (re)connect and
// every second:
// - The sentinel: an instance remembers the value it saw (sentinel.ts has the rules). It is not
//   ready from the moment a connection closes until a check after reconnecting has passed. The
//   begin script compares the sentinel with the remembered value too (steps.ts), so a store
//   emptied without a disconnect refuses the very next claim and calls sentinelLost(). On a
//   Cluster every slot has its sentinel (slot-sentinels.ts): an emptied master cannot pass on
//   another master's.
// - Safety (safety.ts): each check reads INFO from every master; a store that can evict keys
//   fails writes closed, one that persists nothing is warned about.
import { randomUUID } from 'node:crypto';
import { Cluster, type Redis } from 'ioredis';
import type { Logger } from '../../observe/logger.js';
import type { NotReady, Persistence } from '../store.js';
import {
  DEADLINE_MARGIN_MS,
  describeFailure,
  masters,
  scanDeadlineMs,
  scanOnce,
  slotPerMaster,
  withDeadline,
  type Client,
  type StoreConfig,
} from './client.js';
import { writeSentinel } from './operator.js';
import { judgeSafety, type NodeFacts } from './safety.js';
import { judgeSentinel, NOT_READY, sentinelAckKey, sentinelKey, type NotReadyReason, type SentinelFacts } from './sentinel.js';
import { slotSentinelKeyOf } from './slot-sentinels.js';

export const CHECK_INTERVAL_MS = 1000;

export class Readiness {
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
  private waiters = new Set<(ready: boolean) => void>();

  /** Watches `client` (and a Cluster's every node) and checks every `checkIntervalMs`. */
  constructor(
    private readonly client: Client,
    private readonly config: StoreConfig,
    private readonly log: Logger | undefined,
    checkIntervalMs: number,
  ) {
    this.watch(client);
    if (client instanceof Cluster) client.on('+node', (node: Redis) => this.watch(node));
    this.timer = setInterval(() => this.requestCheck(), checkIntervalMs).unref();
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

  /** The sentinel value this instance saw last ('' before it saw any: never a sentinel). */
  sentinel(): string {
    return this.remembered ?? '';
  }

  /** Why a new claim is refused now (the last reason recorded). */
  refusalDetail(): string {
    return this.reason?.detail ?? 'unknown';
  }

  /** The begin script found another sentinel: not ready until a check (run now) says otherwise. */
  sentinelLost(): void {
    this.generation++;
    this.setReady(false, NOT_READY.sentinel_missing);
    this.requestCheck();
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

  isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    this.isReady = false;
    clearInterval(this.timer);
    for (const wake of this.waiters) wake(false);
    this.waiters.clear();
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
    if (wasReady || verdict)
      this.log?.warn({ store: 'redis', reason: reason?.code, detail: reason?.detail }, 'store not ready: writes fail closed');
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
      const safety = await withDeadline(this.safety(), scanDeadlineMs(this.config));
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
      if (generation === this.generation)
        this.setReady(false, { code: 'unreachable', detail: `redis unreachable (${describeFailure(err)})` });
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
        : await node.config('GET', 'save').then(
            (reply) => (Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : null),
            () => null,
          );
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
        this.log?.warn(
          { store: 'redis', evicts: verdict.evicts },
          'store can evict keys, accepted because store.allowEviction is set: an evicted record lets its write run again',
        );
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
          if (!(await writeSentinel(this.client, this.config.keyPrefix, randomUUID(), 'NX')).existed)
            this.log?.info({ store: 'redis' }, 'empty store initialised with a new sentinel');
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
}
