// The embedded store for one process: the decide table over a Map. Forgets everything on restart.
// Bounded in records and in (estimated) bytes: when full it refuses new records (StoreFullError →
// 503 store_full, nothing sent) and never evicts one — dropping a live record would let its retry run
// again. Only what has expired by its own TTL is swept to make room.
import { MEMORY_STORE_DEFAULTS } from '../config/schema.js';
import { MemoryBreaker } from './memory-breaker.js';
import { MemoryLeash } from './memory-leash.js';
import {
  decideApprovalStep,
  decideBegin,
  decideFinish,
  decideMarkSent,
  decideRenew,
  decideResolve,
  type Change,
  type Decision,
} from './decide.js';
import {
  StoreFullError,
  type BeginInput,
  type BeginResult,
  type BudgetCounter,
  type CooldownListener,
  type DeadLetter,
  type Fence,
  type FinishOutcome,
  type IdemRecord,
  type RecordKey,
  type ResolveOutcome,
  type Seen,
  type StepResult,
  type Store,
} from './store.js';

interface Entry {
  key: RecordKey;
  record: IdemRecord;
  expiresAt: number | null;
  /** Estimated bytes (entryBytes). */
  bytes: number;
}

export interface MemoryLimits {
  maxRecords: number;
  maxBytes: number;
}

export interface MemoryUsage extends MemoryLimits {
  records: number;
  bytes: number;
}

const SWEEP_MS = 60_000;

/**
 * The Map slot, the entry, record, meta and key objects, numbers and string headers of one record:
 * measured at ≈1 KiB on Node 20 (a record without a response costs ≈1.45 KiB of heap with ≈0.4 KiB
 * of it in its strings).
 */
const RECORD_OVERHEAD_BYTES = 1024;

/**
 * A record's memory cost, estimated: the fixed overhead plus the length of every string and body it holds.
 * The stored body is a Buffer of its own (stored-answer.ts), its bytes outside the heap, so for the
 * records that matter — those with a large answer — this tracks the process's memory closely.
 */
function entryBytes(id: string, key: RecordKey, record: IdemRecord): number {
  let bytes = RECORD_OVERHEAD_BYTES + id.length + key.scope.length + key.upstream.length + key.keyHash.length;
  bytes += record.fingerprint.length + record.upstreamKey.length + record.owner.length;
  bytes += record.meta.method.length + record.meta.path.length + record.meta.keySource.length;
  bytes += (record.requestId?.length ?? 0) + (record.reason?.length ?? 0);
  if (record.response !== null) {
    bytes += record.response.body.length;
    for (const [name, value] of Object.entries(record.response.headers)) {
      bytes += name.length;
      for (const v of Array.isArray(value) ? value : [value]) bytes += v.length;
    }
  }
  return bytes;
}

/** When a record's next expiry event is due: the whole record, or (completed) its response. */
function nextEvent(entry: Entry): number {
  const responseUntil = entry.record.state === 'completed' && entry.record.response !== null ? entry.record.responseUntil : Infinity;
  return Math.min(entry.expiresAt ?? Infinity, responseUntil);
}

export class MemoryStore implements Store {
  readonly kind = 'memory';
  private readonly entries = new Map<string, Entry>();
  /** `Idempotency-Intent: new` pointers (derived key → latest operation key); bounded like records. */
  private readonly latest = new Map<string, { key: string; until: number }>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly cooldownListeners: CooldownListener[] = [];
  private readonly limits: MemoryLimits;
  private readonly leash: MemoryLeash;
  private readonly breaker: MemoryBreaker;
  /** Sum of the entries' estimated bytes. */
  private bytes = 0;
  /** Nothing expires before this (a lower bound, exact after a sweep): a full store sweeps only when it may free something. */
  private nextExpiry = Infinity;

  constructor(
    private readonly clock: () => number = Date.now,
    limits: Partial<MemoryLimits> = {},
  ) {
    this.limits = { ...MEMORY_STORE_DEFAULTS, ...limits };
    this.leash = new MemoryLeash(this.limits.maxRecords);
    this.breaker = new MemoryBreaker(this.limits.maxRecords);
    this.sweeper = setInterval(() => this.sweep(this.clock()), SWEEP_MS).unref();
  }

  usage(): MemoryUsage {
    return { records: this.entries.size, bytes: this.bytes, ...this.limits };
  }

  private id(key: RecordKey): string {
    return `${key.scope}\u0000${key.upstream}\u0000${key.keyHash}`;
  }

  private read(key: RecordKey, now: number): IdemRecord | null {
    const entry = this.entries.get(this.id(key));
    if (entry === undefined) return null;
    if (entry.expiresAt !== null && now >= entry.expiresAt) {
      this.remove(this.id(key));
      return null;
    }
    return entry.record;
  }

  /** `created`: the begin whose record this may create (its charges are reserved, its intent indexed). */
  private apply<R>(key: RecordKey, step: (current: IdemRecord | null, now: number) => Decision<R>, created?: BeginInput): R {
    const now = this.clock();
    const current = this.read(key, now);
    const { result, change } = step(current, now);
    // Only a begin on a free key creates a record, and only that is ever refused. Every step on an
    // existing record (replay, takeover, markSent, renew, finish, resolve) applies even past maxBytes:
    // a write that already ran must be stored. That overshoot is bounded by maxStoredResponseBytes
    // (as base64) per write in flight.
    if (current === null && change.kind === 'put') this.admit(key, change.record, now);
    this.write(key, change);
    if (change.kind === 'keep') return result;
    if (current === null && change.kind === 'put' && created !== undefined)
      this.leash.created(key.scope, key.upstream, this.id(key), created, change.record, now);
    else this.leash.changed(key.scope, key.upstream, this.id(key), current, change.kind === 'put' ? change.record : null, now);
    return result;
  }

  /** Room for a new record, or StoreFullError: first sweeps what has expired by its own TTL, never evicts. */
  private admit(key: RecordKey, record: IdemRecord, now: number): void {
    const bytes = entryBytes(this.id(key), key, record);
    const fits = (): boolean => this.entries.size < this.limits.maxRecords && this.bytes + bytes <= this.limits.maxBytes;
    if (fits()) return;
    if (now >= this.nextExpiry) this.sweep(now);
    if (fits()) return;
    throw new StoreFullError(
      `memory store full: ${this.entries.size} records (maxRecords ${this.limits.maxRecords}), ~${this.bytes} bytes (maxBytes ${this.limits.maxBytes})`,
    );
  }

  private write(key: RecordKey, change: Change): void {
    if (change.kind === 'put') {
      const id = this.id(key);
      const entry: Entry = { key, record: change.record, expiresAt: change.expiresAt, bytes: entryBytes(id, key, change.record) };
      this.bytes += entry.bytes - (this.entries.get(id)?.bytes ?? 0);
      this.entries.set(id, entry);
      this.nextExpiry = Math.min(this.nextExpiry, nextEvent(entry));
    } else if (change.kind === 'delete') this.remove(this.id(key));
  }

  private remove(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    this.entries.delete(id);
    this.bytes -= entry.bytes;
  }

  /** Drops what has expired by its own TTL (records, and the bodies of tombstones); nothing else. */
  private sweep(now: number): void {
    this.leash.sweep(now);
    this.breaker.sweep(now);
    let next = Infinity;
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt !== null && now >= entry.expiresAt) {
        this.remove(id);
        continue;
      }
      // A tombstone keeps the fingerprint, not the body.
      if (entry.record.state === 'completed' && entry.record.response !== null && now >= entry.record.responseUntil) {
        entry.record = { ...entry.record, response: null };
        this.bytes -= entry.bytes;
        entry.bytes = entryBytes(id, entry.key, entry.record);
        this.bytes += entry.bytes;
      }
      next = Math.min(next, nextEvent(entry));
    }
    this.nextExpiry = next;
  }

  async begin(input: BeginInput): Promise<BeginResult> {
    const { scope, upstream } = input.key;
    const step = (current: IdemRecord | null, now: number): Decision<BeginResult> => {
      const refused = current === null ? this.leash.admission(scope, upstream, this.id(input.key), input, now) : null;
      return refused === null ? decideBegin(current, input, now) : { result: refused, change: { kind: 'keep' } };
    };
    const pointer = input.pointer === null ? null : this.pointerSlot(input.key, input.pointer.from);
    const result = this.apply(input.key, step, input);
    if (result.outcome === 'acquired' && pointer !== null)
      this.latest.set(pointer, { key: input.pointer!.operationKey, until: this.clock() + input.pointer!.ttlMs });
    return result;
  }

  /** Room for a derived key's pointer (bounded like records), checked before anything changes. */
  private pointerSlot(key: RecordKey, from: string): string {
    const id = this.id({ ...key, keyHash: from });
    if (this.latest.has(id) || this.latest.size < this.limits.maxRecords) return id;
    const now = this.clock();
    for (const [other, latest] of this.latest) if (now >= latest.until) this.latest.delete(other);
    if (this.latest.size >= this.limits.maxRecords)
      throw new StoreFullError(`memory store full: ${this.latest.size} new-operation pointers (maxRecords ${this.limits.maxRecords})`);
    return id;
  }

  async markSent(fence: Fence, leaseMs: number): Promise<StepResult> {
    return this.apply(fence.key, (current, now) => decideMarkSent(current, fence, leaseMs, now));
  }

  async renew(fence: Fence, leaseMs: number): Promise<StepResult> {
    return this.apply(fence.key, (current, now) => decideRenew(current, fence, leaseMs, now));
  }

  async finish(fence: Fence, outcome: FinishOutcome): Promise<StepResult> {
    return this.apply(fence.key, (current, now) => decideFinish(current, fence, outcome, now));
  }

  async resolve(key: RecordKey, seen: Seen, outcome: ResolveOutcome): Promise<StepResult> {
    return this.apply(key, (current, now) => decideResolve(current, seen.epoch, outcome, now));
  }

  async decideApproval(key: RecordKey, seen: Seen, verdict: 'approve' | 'deny' | 'expire'): Promise<StepResult> {
    return this.apply(key, (current, now) => decideApprovalStep(current, seen.epoch, verdict, now));
  }

  async approvals(limit: number): Promise<DeadLetter[]> {
    return this.listed((record) => record.state === 'awaiting_approval' && record.approval?.state === 'pending', limit);
  }

  async budgetCounters(query: { scope: string | null; scopePrefix: string; buckets: readonly string[] }): Promise<BudgetCounter[]> {
    return this.leash.list(query, this.clock());
  }

  async get(key: RecordKey): Promise<IdemRecord | null> {
    return this.read(key, this.clock());
  }

  async findByKeyHash(keyHash: string, limit: number): Promise<DeadLetter[]> {
    const now = this.clock();
    const found: DeadLetter[] = [];
    for (const entry of this.entries.values()) {
      if (entry.key.keyHash === keyHash && (entry.expiresAt === null || now < entry.expiresAt))
        found.push({ key: entry.key, record: entry.record });
    }
    return found.slice(0, limit);
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    return this.listed((record) => record.state === 'outcome_unknown', limit);
  }

  /** The live records that `wanted`, oldest change first. */
  private listed(wanted: (record: IdemRecord) => boolean, limit: number): DeadLetter[] {
    const now = this.clock();
    const found: DeadLetter[] = [];
    for (const entry of this.entries.values()) {
      if (wanted(entry.record) && (entry.expiresAt === null || now < entry.expiresAt)) found.push({ key: entry.key, record: entry.record });
    }
    return found.sort((a, b) => a.record.updatedAt - b.record.updatedAt).slice(0, limit);
  }

  announceCooldown(scope: string, upstream: string, delayMs: number): void {
    for (const listener of this.cooldownListeners) listener(scope, upstream, delayMs);
  }

  onCooldown(listener: CooldownListener): void {
    this.cooldownListeners.push(listener);
  }

  async latestOperation(key: RecordKey): Promise<string | null> {
    const id = this.id(key);
    const latest = this.latest.get(id);
    if (latest === undefined) return null;
    if (this.clock() < latest.until) return latest.key;
    this.latest.delete(id);
    return null;
  }

  async pausedUntil(scope: string, upstream: string): Promise<number | null> {
    return this.breaker.pausedUntil(scope, upstream, this.clock());
  }

  async noteRefusal(
    scope: string,
    upstream: string,
    rule: { refusals: number; windowMs: number; pauseMs: number },
  ): Promise<number | null> {
    return this.breaker.noteRefusal(scope, upstream, rule, this.clock());
  }

  async resume(scope: string, upstreams: readonly string[]): Promise<boolean> {
    return this.breaker.resume(scope, upstreams, this.clock());
  }

  ready(): boolean {
    return true;
  }

  notReadyReason(): null {
    return null;
  }

  persistence(): 'none' {
    return 'none';
  }

  async whenReady(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
