// Completed records this instance wrote, kept in its memory so that a hot replay answers without a
// store round trip. Safe without invalidation: a completed record does not change in the store until
// its replay window ends (resolve, release and approvals act only on unknown, in-flight and awaiting
// records; store/decide.ts), and an entry's window is counted from before its finish was sent, so it
// ends before the store's own. Bounded by bytes: the least recently replayed goes first. lru-cache
// keeps the order in its own lists: recency by delete-and-set in a V8 Map leaves a key's deleted
// copies in its bucket until a rehash, and with 30,000 entries a hot key's replay cost ~40 µs.
import { LRUCache } from 'lru-cache';
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
  private readonly entries: LRUCache<string, Entry>;
  /** By owner token: the record each acquired begin holds, to cache once it completes. */
  private readonly pending = new Map<string, IdemRecord>();

  constructor(
    maxBytes: number,
    private readonly now: () => number = Date.now,
  ) {
    // An answer larger than the bound is not kept (lru-cache's maxEntrySize defaults to maxSize).
    this.entries = new LRUCache({ maxSize: maxBytes, sizeCalculation: (entry) => entry.bytes });
  }

  /** The store's answer to this begin, when the record is cached: a replay; else null (ask the store). */
  replay(input: BeginInput): BeginResult | null {
    if (input.mode === 'fresh') return null;
    const address = addressOf(input.key);
    const entry = this.entries.get(address);
    if (entry === undefined || entry.fingerprint !== input.fingerprint) return null;
    if (this.now() >= entry.until) {
      this.entries.delete(address);
      return null;
    }
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
    // Set (or, when too large, not kept: lru-cache then drops an earlier entry of this address too).
    this.entries.set(addressOf(fence.key), { fingerprint: record.fingerprint, record: completed, until, bytes });
  }

  /** Entries and their bytes (for tests and metrics). */
  size(): { entries: number; bytes: number; pending: number } {
    return { entries: this.entries.size, bytes: this.entries.calculatedSize, pending: this.pending.size };
  }
}
