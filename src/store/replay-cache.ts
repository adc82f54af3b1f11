// Completed records this instance wrote, kept in its memory so that a hot replay answers without a
// store round trip. Safe without invalidation: a completed record does not change in the store until
// its replay window ends (resolve, release and approvals act only on unknown, in-flight and awaiting
// records; store/decide.ts), and an entry's window is counted from before its finish was sent, so it
// ends before the store's own. Bounded by bytes: the least recently replayed goes first.
import type { BeginInput, BeginResult, Fence, FinishOutcome, IdemRecord, StepResult } from './store.js';

interface Entry {
  fingerprint: string;
  record: IdemRecord;
  /** Local clock: the entry answers strictly before this. */
  until: number;
  bytes: number;
}

/** A record's cost beyond its body: fields, headers, map overhead (a rough bound, not a measure). */
const ENTRY_OVERHEAD_BYTES = 512;
/** Acquired records waiting for their finish; more than this in flight means finishes were lost. */
const MAX_PENDING = 10_000;

const addressOf = (key: BeginInput['key']): string => `${key.scope}\n${key.upstream}\n${key.keyHash}`;

export class ReplayCache {
  private readonly entries = new Map<string, Entry>();
  /** By owner token: the record each acquired begin holds, to cache once it completes. */
  private readonly pending = new Map<string, IdemRecord>();
  private bytes = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The store's answer to this begin, when the record is cached: a replay; else null (ask the store). */
  replay(input: BeginInput): BeginResult | null {
    if (input.mode === 'fresh') return null;
    const address = addressOf(input.key);
    const entry = this.entries.get(address);
    if (entry === undefined || entry.fingerprint !== input.fingerprint) return null;
    if (this.now() >= entry.until) {
      this.drop(address, entry);
      return null;
    }
    // Most recently used last: eviction takes from the front.
    this.entries.delete(address);
    this.entries.set(address, entry);
    return { outcome: 'replay', record: entry.record };
  }

  /** A begin acquired this record for its owner: cached when the owner's finish completes it. */
  acquired(record: IdemRecord): void {
    if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    this.pending.set(record.owner, record);
  }

  /** Called with the time taken before the finish was sent, and what the store said. */
  finished(fence: Fence, outcome: FinishOutcome, sentAt: number, result: StepResult): void {
    const record = this.pending.get(fence.owner);
    this.pending.delete(fence.owner);
    if (record === undefined || result !== 'ok' || outcome.kind !== 'complete') return;
    const until = sentAt + outcome.ttlSec * 1000;
    const completed: IdemRecord = {
      ...record,
      state: 'completed',
      epoch: fence.epoch,
      status: outcome.status,
      requestId: outcome.requestId,
      response: outcome.response,
      reason: null,
      responseUntil: until,
      leaseUntil: 0,
      updatedAt: sentAt,
    };
    const bytes = (outcome.response?.body.length ?? 0) + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.maxBytes) return;
    const address = addressOf(fence.key);
    const old = this.entries.get(address);
    if (old !== undefined) this.drop(address, old);
    this.entries.set(address, { fingerprint: record.fingerprint, record: completed, until, bytes });
    this.bytes += bytes;
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.drop(oldest, entry);
    }
  }

  /** Entries and their bytes (for tests and metrics). */
  size(): { entries: number; bytes: number; pending: number } {
    return { entries: this.entries.size, bytes: this.bytes, pending: this.pending.size };
  }

  private drop(address: string, entry: Entry): void {
    this.entries.delete(address);
    this.bytes -= entry.bytes;
  }
}
