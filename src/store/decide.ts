// The record state machine as a pure table: (record, request, now) → (result, change).
// The memory store applies it directly; the Redis Lua scripts mirror it step for step, and the
// shared contract suite holds both to the same answers.
import { leashOf } from './decide-leash.js';
import {
  RESOLVED_WITHOUT_ANSWER,
  type BeginInput,
  type BeginOutcome,
  type BeginResult,
  type Fence,
  type FinishOutcome,
  type IdemRecord,
  type ResolveOutcome,
  type StepResult,
  type VisibleState,
} from './store.js';

export type Change =
  | { kind: 'keep' }
  /** `expiresAt` null: the record never expires (in flight, outcome unknown). */
  | { kind: 'put'; record: IdemRecord; expiresAt: number | null }
  | { kind: 'delete' };

export interface Decision<R> {
  result: R;
  change: Change;
}

const KEEP: Change = { kind: 'keep' };

export function visibleState(record: IdemRecord, now: number): VisibleState {
  return record.state === 'completed' && now >= record.responseUntil ? 'tombstone' : record.state;
}

/**
 * Bytes of this operation may have left: the phase says so, or an earlier epoch sent before the
 * record was reclaimed (a reclaim restarts the phase at `claimed`, but `attempts` remembers).
 */
export function mayHaveSent(record: IdemRecord): boolean {
  return record.phase === 'sent' || record.attempts > 0;
}

/** An in-flight record whose writer sent and then vanished is as unknown as a marked one. */
export function isUnknown(record: IdemRecord, now: number): boolean {
  return record.state === 'outcome_unknown' || (record.state === 'in_flight' && mayHaveSent(record) && now >= record.leaseUntil);
}

function put(record: IdemRecord): Change {
  return { kind: 'put', record, expiresAt: null };
}

/** The caller takes the record: a new epoch fences out every earlier owner. */
function claim(record: IdemRecord, input: BeginInput, now: number): Decision<BeginResult> {
  const next: IdemRecord = {
    ...record,
    state: 'in_flight',
    phase: 'claimed',
    owner: input.owner,
    epoch: record.epoch + 1,
    leaseUntil: now + input.leaseMs,
    updatedAt: now,
  };
  return { result: { outcome: 'acquired', record: next }, change: put(next) };
}

/** Only for a begin on an existing record, or one its admission (decide-leash.ts) let through. */
export function decideBegin(current: IdemRecord | null, input: BeginInput, now: number): Decision<BeginResult> {
  if (current === null) {
    const created: IdemRecord = {
      state: 'in_flight',
      phase: 'claimed',
      fingerprint: input.fingerprint,
      upstreamKey: input.upstreamKey,
      owner: input.owner,
      epoch: 1,
      leaseUntil: now + input.leaseMs,
      attempts: 0,
      createdAt: now,
      updatedAt: now,
      responseUntil: 0,
      status: null,
      requestId: null,
      response: null,
      reason: null,
      meta: input.meta,
      leash: leashOf(input),
      approval: null,
    };
    if (input.approval === null) return { result: { outcome: 'acquired', record: created }, change: put(created) };
    // Above a threshold: held, not sent, until a person decides (its budget holds are taken now).
    const held: IdemRecord = {
      ...created,
      state: 'awaiting_approval',
      leaseUntil: 0,
      approval: { state: 'pending', expiresAt: now + input.approval.ttlMs, amount: input.approval.amount },
    };
    return { result: { outcome: 'approval_required', record: held }, change: put(held) };
  }
  // A begin resent after its reply was lost: the claim it made is its own.
  if (current.owner === input.owner && current.state === 'in_flight')
    return { result: { outcome: 'acquired', record: current }, change: KEEP };
  const report = (outcome: BeginOutcome): Decision<BeginResult> => ({ result: { outcome, record: current }, change: KEEP });
  if (current.state === 'awaiting_approval') {
    // The agent's re-send (same key, or a keyless write joined by its intent): the decision answers it.
    if (current.fingerprint !== input.fingerprint) return report('mismatch');
    const approval = current.approval!;
    if (approval.state === 'approved') return claim(current, input, now);
    if (approval.state === 'pending') return report(now < approval.expiresAt ? 'approval_pending' : 'approval_expired');
    return report(approval.state === 'denied' ? 'approval_denied' : 'approval_expired');
  }
  if (input.mode === 'fresh') return report('duplicate');
  if (current.fingerprint !== input.fingerprint) return report('mismatch');

  switch (current.state) {
    case 'completed':
      return report(now < current.responseUntil ? 'replay' : 'expired');
    case 'in_flight':
      if (now < current.leaseUntil) return report('in_use');
      // Only a claim that never sent is free to take over (§3.7 "phase claimed (never sent)").
      if (!mayHaveSent(current)) return claim(current, input, now);
      if (input.reclaimUnknown) return claim(current, input, now);
      {
        // The writer sent and vanished: nobody can know whether the write ran.
        const unknown: IdemRecord = {
          ...current,
          state: 'outcome_unknown',
          reason: current.reason ?? 'lease_expired_after_send',
          updatedAt: now,
        };
        return { result: { outcome: 'unknown', record: unknown }, change: put(unknown) };
      }
    case 'outcome_unknown':
      return input.reclaimUnknown ? claim(current, input, now) : report('unknown');
  }
}

function fenced(current: IdemRecord | null, fence: Fence): current is IdemRecord {
  return current !== null && current.owner === fence.owner && current.epoch === fence.epoch;
}

export function decideMarkSent(current: IdemRecord | null, fence: Fence, leaseMs: number, now: number): Decision<StepResult> {
  // Once the lease has lapsed another instance may take the claim over: never send after that.
  if (!fenced(current, fence) || current.state !== 'in_flight' || now >= current.leaseUntil) return { result: 'stale', change: KEEP };
  return {
    result: 'ok',
    change: put({ ...current, phase: 'sent', attempts: current.attempts + 1, leaseUntil: now + leaseMs, updatedAt: now }),
  };
}

export function decideRenew(current: IdemRecord | null, fence: Fence, leaseMs: number, now: number): Decision<StepResult> {
  if (!fenced(current, fence) || current.state !== 'in_flight') return { result: 'stale', change: KEEP };
  return { result: 'ok', change: put({ ...current, leaseUntil: Math.max(current.leaseUntil, now + leaseMs), updatedAt: now }) };
}

function completed(
  current: IdemRecord,
  status: number,
  requestId: string | null,
  response: IdemRecord['response'],
  ttlSec: number,
  tombstoneSec: number,
  now: number,
): Change {
  const responseUntil = now + ttlSec * 1000;
  const record: IdemRecord = {
    ...current,
    state: 'completed',
    status,
    requestId,
    response,
    reason: null,
    responseUntil,
    leaseUntil: 0,
    updatedAt: now,
  };
  return { kind: 'put', record, expiresAt: responseUntil + tombstoneSec * 1000 };
}

/**
 * Settles the owner's attempt. Also accepted when the record turned `outcome_unknown` under the
 * same epoch (the owner's lease ran out, nobody attempted since): the true answer beats uncertainty.
 */
export function decideFinish(current: IdemRecord | null, fence: Fence, outcome: FinishOutcome, now: number): Decision<StepResult> {
  if (!fenced(current, fence) || current.state === 'completed') return { result: 'stale', change: KEEP };
  switch (outcome.kind) {
    case 'complete':
      return {
        result: 'ok',
        change: completed(current, outcome.status, outcome.requestId, outcome.response, outcome.ttlSec, outcome.tombstoneSec, now),
      };
    case 'release':
      return { result: 'ok', change: { kind: 'delete' } };
    case 'unknown':
      return {
        result: 'ok',
        change: put({
          ...current,
          state: 'outcome_unknown',
          status: outcome.status,
          requestId: outcome.requestId,
          reason: outcome.reason,
          leaseUntil: 0,
          updatedAt: now,
        }),
      };
  }
}

/** How long a denied or expired approval is kept, so the agent's re-sends keep hearing why. */
export const DECIDED_APPROVAL_KEEP_MS = 86_400_000;

/**
 * A person's decision on a pending approval (or its expiry), compare-and-set on the epoch read.
 * Approve only before it expires; expire only after. A denied or expired one is kept a day, then
 * gone (decide-leash.ts releases its holds on either).
 */
export function decideApprovalStep(
  current: IdemRecord | null,
  epoch: number,
  verdict: 'approve' | 'deny' | 'expire',
  now: number,
): Decision<StepResult> {
  const approval = current?.approval;
  if (current === null || current.epoch !== epoch || current.state !== 'awaiting_approval' || approval?.state !== 'pending')
    return { result: 'stale', change: KEEP };
  const expired = now >= approval.expiresAt;
  if (verdict === 'approve' ? expired : verdict === 'expire' ? !expired : false) return { result: 'stale', change: KEEP };
  const state = verdict === 'approve' ? 'approved' : verdict === 'deny' ? 'denied' : 'expired';
  const record: IdemRecord = { ...current, approval: { ...approval, state }, updatedAt: now };
  return { result: 'ok', change: { kind: 'put', record, expiresAt: state === 'approved' ? null : now + DECIDED_APPROVAL_KEEP_MS } };
}

/** An operator's verdict on a dead letter, compare-and-set on the epoch they read. */
export function decideResolve(current: IdemRecord | null, epoch: number, outcome: ResolveOutcome, now: number): Decision<StepResult> {
  if (current === null || current.epoch !== epoch || !isUnknown(current, now)) return { result: 'stale', change: KEEP };
  if (outcome.kind === 'not_executed') return { result: 'ok', change: { kind: 'delete' } };
  const change = completed(current, outcome.status, current.requestId, outcome.response, outcome.ttlSec, outcome.tombstoneSec, now);
  if (outcome.response === null && change.kind === 'put') change.record.reason = RESOLVED_WITHOUT_ANSWER;
  return { result: 'ok', change };
}
