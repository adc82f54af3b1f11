// The idempotency store: records and the five fenced steps every implementation must make atomic.
import type { KeySource } from '../observe/exchange.js';

/** `awaiting_approval`: a write above an approval threshold, held (with its budget holds) until a person decides. */
export type RecordState = 'in_flight' | 'completed' | 'outcome_unknown' | 'awaiting_approval';
/** `tombstone` is not stored: it is a completed record whose response has expired (see decide.ts). */
export type VisibleState = RecordState | 'tombstone';
/** claimed: nothing sent yet (free to take over when the lease expires); sent: bytes may have left. */
export type Phase = 'claimed' | 'sent';

/** Where a record lives: every key of one agent shares the `{namespace:agent}` hash tag. */
export interface RecordKey {
  /** `namespace:agent` */
  scope: string;
  upstream: string;
  /** sha256 of the key's kind and text; the key itself is never stored in clear. */
  keyHash: string;
}

export interface StoredResponse {
  status: number;
  /** Allow-listed headers only (never Set-Cookie). */
  headers: Record<string, string | string[]>;
  /** The exact body bytes. */
  body: Buffer;
}

/** What an operator sees; never a credential, a raw key or a body. */
export interface RecordMeta {
  method: string;
  path: string;
  keySource: KeySource;
}

/** A budget reservation held by a record (DESIGN §10.2): on `bucket`'s counter, `amount` minor units (1 for a count). */
export interface Hold {
  /** `${budget}:${bucketId}`: the counter, under the agent's scope. */
  bucket: string;
  amount: number;
}

/** What the agent leash tied to a record when it was created; fixed for the record's life. */
export interface Leash {
  /** The intent hash this record holds in its agent's intent index, or null. */
  intent: string | null;
  /** Reserved on creation: spent on a 2xx/3xx, released on proof nothing moved, kept while unknown. */
  holds: readonly Hold[];
}

export const NO_LEASH: Leash = { intent: null, holds: [] };

/** A person's decision on a write above a threshold (DESIGN §10.4). */
export interface Approval {
  state: 'pending' | 'approved' | 'denied' | 'expired';
  /** ms: a pending approval not decided by then expires (its holds are released). */
  expiresAt: number;
  /** The amount that needed it, in minor units. */
  amount: number;
}

export interface IdemRecord {
  state: RecordState;
  phase: Phase;
  fingerprint: string;
  /** The key sent upstream; fixed when the record is created. */
  upstreamKey: string;
  owner: string;
  epoch: number;
  /** ms since the epoch, on the store's clock. */
  leaseUntil: number;
  attempts: number;
  createdAt: number;
  updatedAt: number;
  /** Completed records: until when the response is replayed (then a tombstone until the record expires). */
  responseUntil: number;
  /** The upstream's final status and request id, once known. */
  status: number | null;
  requestId: string | null;
  /** null while in flight, and when the response was too large to keep (`response_not_replayable`). */
  response: StoredResponse | null;
  /** Why the outcome is unknown (timeout, reset, 503…). */
  reason: string | null;
  meta: RecordMeta;
  leash: Leash;
  /** Set when the write needed a person's approval (kept once approved, for the record). */
  approval: Approval | null;
}

/** A budget a new record must fit in, checked and reserved atomically with the claim. */
export interface Charge extends Hold {
  limit: number;
  /** ms since the epoch when the bucket's period ends (its counter expires then); null for `total`. */
  resetAt: number | null;
}

/**
 * The intent index of a new record: `guard` refuses the claim when another operation of the
 * window holds the intent; `claim` takes the intent over (`Idempotency-Intent: new`).
 */
export interface IntentClaim {
  hash: string;
  windowMs: number;
  mode: 'guard' | 'claim';
}

/** The operation holding an intent, as its index tells it (the record itself may have expired). */
export interface IntentHolder {
  upstreamKey: string;
  createdAt: number;
  state: RecordState;
  status: number | null;
  meta: RecordMeta;
}

/** The budget a new record does not fit in. */
export interface LimitRefusal {
  bucket: string;
  limit: number;
  /** Spent and held on the counter, before this write. */
  used: number;
  amount: number;
  resetAt: number | null;
}

export interface BeginInput {
  key: RecordKey;
  fingerprint: string;
  /** Used only if this begin creates the record. */
  upstreamKey: string;
  /** A fresh random token per request: a resent begin carrying it is recognised as ours. */
  owner: string;
  leaseMs: number;
  /** `join`: an existing record is this operation. `fresh`: any existing record is a possible duplicate. */
  mode: 'join' | 'fresh';
  /** The upstream dedupes on the key itself, so an unknown outcome may be re-sent with the same key. */
  reclaimUnknown: boolean;
  meta: RecordMeta;
  /** Used only if this begin creates the record. */
  intent: IntentClaim | null;
  /** Checked and reserved only if this begin creates the record. */
  charges: readonly Charge[];
  /**
   * `Idempotency-Intent: new`: this record is a deliberate operation under a derived key; the
   * derived key (`from`) is pointed at it for `ttlMs` — only if this begin creates the record, so a
   * refused one (over budget, a duplicate intent) never redirects the earlier operation's retries.
   */
  pointer: { from: string; operationKey: string; ttlMs: number } | null;
  /** Above an approval threshold: a record this begin creates awaits a person's decision, nothing is sent. */
  approval: { amount: number; ttlMs: number } | null;
}

export type BeginOutcome =
  /** The caller owns the record (new, taken over after an unsent claim expired, reclaimed, or its own resend). */
  | 'acquired'
  | 'replay'
  | 'mismatch'
  | 'in_use'
  | 'unknown'
  | 'expired'
  | 'duplicate'
  /** Awaiting approval: just recorded, still pending, denied, or past its time (`approval_expired`; expireApproval then releases its holds). */
  | 'approval_required'
  | 'approval_pending'
  | 'approval_denied'
  | 'approval_expired';

/** Nothing was claimed or reserved for the last two: another operation holds the intent, or a budget is spent. */
export type BeginResult =
  | { outcome: BeginOutcome; record: IdemRecord }
  | { outcome: 'intent_duplicate'; holder: IntentHolder }
  | { outcome: 'limit_exceeded'; refusal: LimitRefusal };

/**
 * The fence every later step carries: a stale owner or an older epoch is refused. `leash` is the
 * record's, as begin returned it: a settling step names the counters and index it touches.
 */
export interface Fence {
  key: RecordKey;
  owner: string;
  epoch: number;
  leash: Leash;
}

/** What an operator's resolve was read from: the epoch it compares, the leash it settles. */
export type Seen = Pick<IdemRecord, 'epoch' | 'leash'>;

/** A budget counter of one agent in one period: `used` is spent plus held. */
export interface BudgetCounter {
  scope: string;
  bucket: string;
  used: number;
  held: number;
}

export type FinishOutcome =
  | { kind: 'complete'; status: number; requestId: string | null; response: StoredResponse | null; ttlSec: number; tombstoneSec: number }
  /** The answer proves the write did not run: the key is free again. */
  | { kind: 'release' }
  | { kind: 'unknown'; status: number | null; requestId: string | null; reason: string };

/** The reason a completed record keeps when an operator said it ran without giving its answer. */
export const RESOLVED_WITHOUT_ANSWER = 'resolved_without_answer';

export type ResolveOutcome =
  /** `response` null: it ran, but its answer is not known; a replay then answers response_not_replayable. */
  { kind: 'executed'; status: number; response: StoredResponse | null; ttlSec: number; tombstoneSec: number } | { kind: 'not_executed' };

/** `stale`: the fence no longer holds (another owner or epoch, or a state the step cannot apply to). */
export type StepResult = 'ok' | 'stale';

export type CooldownListener = (scope: string, upstream: string, delayMs: number) => void;

/** How a store keeps its data across a restart; `unknown` when it could not be told (CONFIG refused). */
export type Persistence = 'aof' | 'rdb' | 'none' | 'unknown';

/** Why a store refuses writes: a stable code for metrics, and a detail saying what to do. */
export interface NotReady {
  code: 'connecting' | 'disconnected' | 'unreachable' | 'closed' | 'not_initialised' | 'sentinel_missing' | 'sentinel_changed' | 'evicting';
  detail: string;
}

/** A record with its address (a dead letter, or any record an operator looked up). */
export interface DeadLetter {
  key: RecordKey;
  record: IdemRecord;
}

export interface Store {
  readonly kind: 'memory' | 'redis';
  begin(input: BeginInput): Promise<BeginResult>;
  /** Before the first byte of an attempt: phase `sent`, attempts+1, lease extended. Refused once the lease has lapsed. */
  markSent(fence: Fence, leaseMs: number): Promise<StepResult>;
  renew(fence: Fence, leaseMs: number): Promise<StepResult>;
  finish(fence: Fence, outcome: FinishOutcome): Promise<StepResult>;
  /** An operator's answer for an `outcome_unknown` record; `epoch` guards against a change since it was read. */
  resolve(key: RecordKey, seen: Seen, outcome: ResolveOutcome): Promise<StepResult>;
  get(key: RecordKey): Promise<IdemRecord | null>;
  /** Every record of this key hash, in any scope (an operator's look-up; Redis scans for it). */
  findByKeyHash(keyHash: string, limit: number): Promise<DeadLetter[]>;
  /** The `outcome_unknown` records, oldest first. */
  deadLetters(limit: number): Promise<DeadLetter[]>;
  /**
   * `Idempotency-Intent: new`: the operation key started last for a derived key (`key` addresses
   * the derived key), so that its own SDK retries join it; null when none in the window. Written
   * by the begin that creates that operation's record (BeginInput.pointer).
   */
  latestOperation(key: RecordKey): Promise<string | null>;
  /**
   * Budget counters of these buckets: of one scope, or (scope null) of every scope under
   * `scopePrefix` that has one (Redis scans for them). Expired periods are absent.
   */
  budgetCounters(query: { scope: string | null; scopePrefix: string; buckets: readonly string[] }): Promise<BudgetCounter[]>;
  /** The breaker (DESIGN §10.5): until when (ms) this agent's writes to this upstream are paused, or null. */
  pausedUntil(scope: string, upstream: string): Promise<number | null>;
  /**
   * Counts one refused write of the agent; the one that reaches `refusals` within `windowMs` pauses
   * its writes for `pauseMs` (the count starts again). → until when it is paused, when this one paused it.
   */
  noteRefusal(scope: string, upstream: string, rule: { refusals: number; windowMs: number; pauseMs: number }): Promise<number | null>;
  /**
   * An operator's decision on a pending approval, compare-and-set on the epoch read: `approve` (before
   * it expires), `deny`; or `expire` once its time has passed. Deny and expire release its holds.
   */
  decideApproval(key: RecordKey, seen: Seen, verdict: 'approve' | 'deny' | 'expire'): Promise<StepResult>;
  /** The pending approvals, oldest first. */
  approvals(limit: number): Promise<DeadLetter[]>;
  /** Ends the agent's pause (and its refusal count) on these upstreams; true if one was paused. */
  resume(scope: string, upstreams: readonly string[]): Promise<boolean>;
  /** Whether writes may proceed (reachable, and for Redis initialised with the sentinel this instance saw). */
  ready(): boolean;
  /** Why writes are refused (for readiness and metrics), or null when ready. */
  notReadyReason(): NotReady | null;
  /** What survives a restart of the store (the memory store: nothing). */
  persistence(): Persistence;
  /** Tells every instance sharing the store that an agent's upstream cools down for `delayMs` (best effort, no wait). */
  announceCooldown(scope: string, upstream: string, delayMs: number): void;
  /** Receives the cooldowns announced by every instance sharing the store, this one included. */
  onCooldown(listener: CooldownListener): void;
  /** Resolves true once ready (at once if it is), false after `timeoutMs`. */
  whenReady(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

/** The store cannot answer (down, slow, or its sentinel changed): writes fail closed. */
export class StoreUnavailableError extends Error {
  readonly code = 'store_unavailable';
  /** False when the step provably did not apply (refused before running): nothing to resend. */
  readonly mayHaveApplied: boolean;
  constructor(message: string, options?: { cause?: unknown; mayHaveApplied?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'StoreUnavailableError';
    this.mayHaveApplied = options?.mayHaveApplied ?? true;
  }
}

/** The store is at its configured bound (the memory store's records or bytes): new writes are refused, nothing is evicted. */
export class StoreFullError extends Error {
  readonly code = 'store_full';
  constructor(message: string) {
    super(message);
    this.name = 'StoreFullError';
  }
}
