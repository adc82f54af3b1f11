// The embedded store for one process: the decide table over a Map. Forgets everything on restart.
import { decideBegin, decideFinish, decideMarkSent, decideRenew, decideResolve, type Change, type Decision } from '../idempotency/decide.js';
import type { BeginInput, BeginResult, CooldownListener, DeadLetter, Fence, FinishOutcome, IdemRecord, RecordKey, ResolveOutcome, StepResult, Store } from './store.js';

interface Entry {
  key: RecordKey;
  record: IdemRecord;
  expiresAt: number | null;
}

const SWEEP_MS = 60_000;

export class MemoryStore implements Store {
  readonly kind = 'memory';
  private readonly entries = new Map<string, Entry>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly cooldownListeners: CooldownListener[] = [];

  constructor(private readonly clock: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_MS).unref();
  }

  private id(key: RecordKey): string {
    return `${key.scope}\u0000${key.upstream}\u0000${key.keyHash}`;
  }

  private read(key: RecordKey, now: number): IdemRecord | null {
    const entry = this.entries.get(this.id(key));
    if (entry === undefined) return null;
    if (entry.expiresAt !== null && now >= entry.expiresAt) {
      this.entries.delete(this.id(key));
      return null;
    }
    return entry.record;
  }

  private apply<R>(key: RecordKey, step: (current: IdemRecord | null, now: number) => Decision<R>): R {
    const now = this.clock();
    const { result, change } = step(this.read(key, now), now);
    this.write(key, change);
    return result;
  }

  private write(key: RecordKey, change: Change): void {
    if (change.kind === 'put') this.entries.set(this.id(key), { key, record: change.record, expiresAt: change.expiresAt });
    else if (change.kind === 'delete') this.entries.delete(this.id(key));
  }

  private sweep(): void {
    const now = this.clock();
    for (const [id, entry] of this.entries) {
      if (entry.expiresAt !== null && now >= entry.expiresAt) this.entries.delete(id);
      // A tombstone keeps the fingerprint, not the body.
      else if (entry.record.state === 'completed' && entry.record.response !== null && now >= entry.record.responseUntil) {
        entry.record = { ...entry.record, response: null };
      }
    }
  }

  async begin(input: BeginInput): Promise<BeginResult> {
    return this.apply(input.key, (current, now) => decideBegin(current, input, now));
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

  async resolve(key: RecordKey, epoch: number, outcome: ResolveOutcome): Promise<StepResult> {
    return this.apply(key, (current, now) => decideResolve(current, epoch, outcome, now));
  }

  async get(key: RecordKey): Promise<IdemRecord | null> {
    return this.read(key, this.clock());
  }

  async findByKeyHash(keyHash: string, limit: number): Promise<DeadLetter[]> {
    const now = this.clock();
    const found: DeadLetter[] = [];
    for (const entry of this.entries.values()) {
      if (entry.key.keyHash === keyHash && (entry.expiresAt === null || now < entry.expiresAt)) found.push({ key: entry.key, record: entry.record });
    }
    return found.slice(0, limit);
  }

  async deadLetters(limit: number): Promise<DeadLetter[]> {
    const now = this.clock();
    const found: DeadLetter[] = [];
    for (const entry of this.entries.values()) {
      if (entry.record.state === 'outcome_unknown' && (entry.expiresAt === null || now < entry.expiresAt)) found.push({ key: entry.key, record: entry.record });
    }
    return found.sort((a, b) => a.record.updatedAt - b.record.updatedAt).slice(0, limit);
  }

  announceCooldown(scope: string, upstream: string, delayMs: number): void {
    for (const listener of this.cooldownListeners) listener(scope, upstream, delayMs);
  }

  onCooldown(listener: CooldownListener): void {
    this.cooldownListeners.push(listener);
  }

  ready(): boolean {
    return true;
  }

  async whenReady(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
