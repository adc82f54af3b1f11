// The memory store's intent index and budget counters (DESIGN §10.1–10.2), per process. The rules
// are decide-leash.ts's; this holds their state, expiring it by its own time like the records.
import { decideAdmission, leashFate } from './decide-leash.js';
import { StoreFullError, type BeginInput, type BeginResult, type BudgetCounter, type IdemRecord, type IntentHolder } from './store.js';

interface Counter {
  scope: string;
  bucket: string;
  used: number;
  held: number;
  /** null: `total`, never expires. */
  resetAt: number | null;
}

interface IntentSlot {
  member: string;
  holder: IntentHolder;
  until: number;
}

const id = (...parts: string[]): string => parts.join('\u0000');

export class MemoryLeash {
  private readonly counters = new Map<string, Counter>();
  private readonly intents = new Map<string, IntentSlot>();

  /** Intents and counters are bounded like records: a full map refuses new ones, never drops a live one. */
  constructor(private readonly maxEntries: number) {}

  /** The refusal of a new record's admission, or null (nothing changes either way). */
  admission(
    scope: string,
    upstream: string,
    member: string,
    input: BeginInput,
    now: number,
  ): Exclude<BeginResult, { record: IdemRecord }> | null {
    this.room(input.charges.length, input.intent === null ? 0 : 1, now);
    const slot = input.intent === null ? undefined : this.live(this.intents, id(scope, upstream, input.intent.hash), now);
    return decideAdmission(input, member, slot ?? null, (bucket) => this.live(this.counters, id(scope, bucket), now)?.used ?? 0);
  }

  /** A new record was created: reserve its charges and index its intent. */
  created(scope: string, upstream: string, member: string, input: BeginInput, record: IdemRecord, now: number): void {
    for (const charge of input.charges) {
      const key = id(scope, charge.bucket);
      const counter =
        this.live(this.counters, key, now) ??
        this.add(this.counters, key, { scope, bucket: charge.bucket, used: 0, held: 0, resetAt: charge.resetAt });
      counter.used += charge.amount;
      counter.held += charge.amount;
    }
    if (input.intent !== null) {
      const holder: IntentHolder = {
        upstreamKey: record.upstreamKey,
        createdAt: now,
        state: record.state,
        status: null,
        meta: record.meta,
      };
      const key = id(scope, upstream, input.intent.hash);
      this.intents.delete(key);
      this.add(this.intents, key, { member, holder, until: now + input.intent.windowMs });
    }
  }

  /** A record changed (`after` null: deleted): its holds are spent or released, its intent updated or freed. */
  changed(scope: string, upstream: string, member: string, before: IdemRecord | null, after: IdemRecord | null, now: number): void {
    if (before === null) return;
    const fate = leashFate(before, after);
    if (fate !== 'keep') {
      for (const hold of before.leash.holds) {
        const counter = this.live(this.counters, id(scope, hold.bucket), now);
        if (counter === undefined) continue; // its period is over
        counter.held -= hold.amount;
        if (fate === 'release') counter.used -= hold.amount;
      }
    }
    if (before.leash.intent === null) return;
    const key = id(scope, upstream, before.leash.intent);
    const slot = this.live(this.intents, key, now);
    if (slot === undefined || slot.member !== member) return;
    if (fate === 'release') this.intents.delete(key);
    else if (after !== null) slot.holder = { ...slot.holder, state: after.state, status: after.status };
  }

  list(query: { scope: string | null; scopePrefix: string; buckets: readonly string[] }, now: number): BudgetCounter[] {
    const wanted = new Set(query.buckets);
    const found: BudgetCounter[] = [];
    for (const [key, counter] of this.counters) {
      if (this.live(this.counters, key, now) === undefined || !wanted.has(counter.bucket)) continue;
      if (query.scope === null ? !counter.scope.startsWith(query.scopePrefix) : counter.scope !== query.scope) continue;
      found.push({ scope: counter.scope, bucket: counter.bucket, used: counter.used, held: counter.held });
    }
    return found;
  }

  sweep(now: number): void {
    for (const key of [...this.counters.keys()]) this.live(this.counters, key, now);
    for (const key of [...this.intents.keys()]) this.live(this.intents, key, now);
  }

  private live<T extends { resetAt: number | null } | { until: number }>(map: Map<string, T>, key: string, now: number): T | undefined {
    const entry = map.get(key);
    if (entry === undefined) return undefined;
    const end = 'until' in entry ? entry.until : entry.resetAt;
    if (end === null || now < end) return entry;
    map.delete(key);
    return undefined;
  }

  /** Checked before anything changes, so a refused begin leaves no trace. */
  private room(counters: number, intents: number, now: number): void {
    const fits = (): boolean => this.counters.size + counters <= this.maxEntries && this.intents.size + intents <= this.maxEntries;
    if (fits()) return;
    this.sweep(now);
    if (!fits())
      throw new StoreFullError(
        `memory store full: ${this.counters.size} budget counters, ${this.intents.size} intents (at most maxRecords ${this.maxEntries} each)`,
      );
  }

  private add<T>(map: Map<string, T>, key: string, entry: T): T {
    map.set(key, entry);
    return entry;
  }
}
