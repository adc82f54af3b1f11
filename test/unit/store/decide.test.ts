// The decide table, pure: random interleavings of several owners' steps, lease expiry on a fake
// clock, resent begins and an operator's verdicts, checked against the at-most-once invariants.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decideBegin,
  decideFinish,
  decideMarkSent,
  decideRenew,
  decideResolve,
  isUnknown,
  type Change,
  type Decision,
} from '../../../src/store/decide.js';
import type { BeginInput, BeginResult, Fence, FinishOutcome, IdemRecord, RecordKey } from '../../../src/store/store.js';

const key: RecordKey = { scope: 'live:agent', upstream: 'payments', keyHash: 'k' };
const meta = { method: 'POST', path: '/v1/payments', keySource: 'client' as const };
const LEASE_MS = 100;
const ACTORS = 3;

type Op =
  | { t: 'begin'; actor: number }
  /** The actor's last begin again, same owner token (a command resent after its reply was lost). */
  | { t: 'resend'; actor: number }
  | { t: 'markSent'; actor: number }
  | { t: 'renew'; actor: number }
  | { t: 'finish'; actor: number; kind: FinishOutcome['kind'] }
  | { t: 'resolve'; executed: boolean; epochDelta: number }
  | { t: 'advance'; ms: number };

const actor = fc.integer({ min: 0, max: ACTORS - 1 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('begin' as const), actor }), weight: 4 },
  { arbitrary: fc.record({ t: fc.constant('resend' as const), actor }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('markSent' as const), actor }), weight: 3 },
  { arbitrary: fc.record({ t: fc.constant('renew' as const), actor }), weight: 1 },
  {
    arbitrary: fc.record({
      t: fc.constant('finish' as const),
      actor,
      kind: fc.constantFrom('complete' as const, 'release' as const, 'unknown' as const),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ t: fc.constant('resolve' as const), executed: fc.boolean(), epochDelta: fc.constantFrom(0, 0, -1, 1) }),
    weight: 1,
  },
  { arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 2.5 * LEASE_MS }) }), weight: 3 },
);

/** A begin the leash cannot refuse (no intent, no charges): its answer always has a record. */
function begun(decision: Decision<BeginResult>): Extract<BeginResult, { record: IdemRecord }> {
  assert.ok('record' in decision.result, `unexpected ${decision.result.outcome}`);
  return decision.result;
}

function finishOutcome(kind: FinishOutcome['kind']): FinishOutcome {
  if (kind === 'complete') {
    return {
      kind,
      status: 201,
      requestId: 'req',
      response: { status: 201, headers: {}, body: Buffer.from('{}') },
      ttlSec: 0.2,
      tombstoneSec: 0.3,
    };
  }
  if (kind === 'release') return { kind };
  return { kind, status: 503, requestId: null, reason: 'upstream_503' };
}

interface Actor {
  /** The owner token of this actor's last begin. */
  token: string | null;
  /** Its fence, once a begin acquired. */
  fence: Fence | null;
  /** Another actor took the record over since this fence was acquired. */
  dead: boolean;
}

/** Applies ops to one key as a store would, asserting the invariants after every step. */
function run(ops: Op[]): void {
  let now = 1_700_000_000_000;
  // Written inside closures too: read it through `state()` so the compiler does not narrow it.
  let current: IdemRecord | null = null;
  const state = (): IdemRecord | null => current;
  let expiresAt: number | null = null;
  let tokens = 0;
  /** Epochs whose markSent succeeded in this record's lifetime (create → delete/expire). */
  let sentEpochs = new Set<number>();
  let lifetimeUpstreamKey: string | null = null;
  const actors: Actor[] = Array.from({ length: ACTORS }, () => ({ token: null, fence: null, dead: false }));

  const newLifetime = (): void => {
    sentEpochs = new Set();
    lifetimeUpstreamKey = null;
  };
  const expire = (): void => {
    if (current !== null && expiresAt !== null && now >= expiresAt) {
      current = null;
      expiresAt = null;
      newLifetime();
    }
  };
  const apply = <R>(decision: Decision<R>): R => {
    const before = current;
    const change: Change = decision.change;
    // A completed record never changes (only expires).
    if (before?.state === 'completed') assert.equal(change.kind, 'keep', 'a completed record changed');
    if (change.kind === 'put') {
      // In flight and unknown never expire; completed always does.
      if (change.record.state === 'completed') assert.notEqual(change.expiresAt, null);
      else assert.equal(change.expiresAt, null, `${change.record.state} record given an expiry`);
      if (before !== null) {
        assert.ok(change.record.epoch >= before.epoch, 'epoch went back');
        assert.equal(change.record.upstreamKey, before.upstreamKey, 'upstream key changed');
        assert.equal(change.record.createdAt, before.createdAt);
      }
      if (lifetimeUpstreamKey === null) lifetimeUpstreamKey = change.record.upstreamKey;
      assert.equal(change.record.upstreamKey, lifetimeUpstreamKey);
      current = change.record;
      expiresAt = change.expiresAt;
    } else if (change.kind === 'delete') {
      current = null;
      expiresAt = null;
      newLifetime();
    }
    return decision.result;
  };
  const beginInput = (owner: string): BeginInput => ({
    key,
    fingerprint: 'fp',
    upstreamKey: `uk-${owner}`,
    owner,
    leaseMs: LEASE_MS,
    mode: 'join',
    reclaimUnknown: false,
    meta,
    intent: null,
    charges: [],
    pointer: null,
    approval: null,
  });
  const begin = (index: number, owner: string): void => {
    const me = actors[index]!;
    me.token = owner;
    const result = apply(decideBegin(current, beginInput(owner), now));
    if (result.outcome !== 'acquired') return;
    assert.equal(result.record.owner, owner);
    assert.equal(result.record.state, 'in_flight');
    me.fence = { key, owner, epoch: result.record.epoch, leash: result.record.leash };
    me.dead = false;
    actors.forEach((other, i) => {
      if (i !== index && other.fence !== null && (other.fence.owner !== owner || other.fence.epoch !== result.record.epoch))
        other.dead = true;
    });
  };
  /** A dead fence is refused, whatever the step. */
  const fencedStep = (index: number, step: (fence: Fence) => Decision<'ok' | 'stale'>): 'ok' | 'stale' | null => {
    const me = actors[index]!;
    if (me.fence === null) return null;
    const result = apply(step(me.fence));
    if (me.dead) assert.equal(result, 'stale', 'a superseded owner was let through');
    return result;
  };

  for (const o of ops) {
    expire();
    switch (o.t) {
      case 'advance':
        now += o.ms;
        break;
      case 'begin':
        begin(o.actor, `o${++tokens}`);
        break;
      case 'resend': {
        const token = actors[o.actor]!.token;
        if (token !== null) begin(o.actor, token);
        break;
      }
      case 'markSent': {
        const before = state();
        const result = fencedStep(o.actor, (fence) => decideMarkSent(state(), fence, LEASE_MS, now));
        if (result === 'ok') {
          assert.ok(before !== null && now < before.leaseUntil, 'sent on a lapsed lease');
          sentEpochs.add(actors[o.actor]!.fence!.epoch);
          // At most once: only one epoch of a record's lifetime ever sends (reclaimUnknown is off).
          assert.ok(sentEpochs.size <= 1, `epochs ${[...sentEpochs].join(',')} all sent`);
        }
        break;
      }
      case 'renew':
        fencedStep(o.actor, (fence) => decideRenew(state(), fence, LEASE_MS, now));
        break;
      case 'finish': {
        const before = state();
        const result = fencedStep(o.actor, (fence) => decideFinish(state(), fence, finishOutcome(o.kind), now));
        if (result === 'ok' && o.kind === 'release') assert.ok(before !== null);
        break;
      }
      case 'resolve': {
        const record = state();
        if (record === null) break;
        const wasUnknown = isUnknown(record, now);
        const verdict = o.executed
          ? {
              kind: 'executed' as const,
              status: 200,
              response: { status: 200, headers: {}, body: Buffer.alloc(0) },
              ttlSec: 0.2,
              tombstoneSec: 0.3,
            }
          : { kind: 'not_executed' as const };
        const result = apply(decideResolve(record, record.epoch + o.epochDelta, verdict, now));
        assert.equal(result, wasUnknown && o.epochDelta === 0 ? 'ok' : 'stale');
        break;
      }
    }
    const record = state();
    if (record !== null) {
      assert.ok(record.epoch >= 1);
      assert.ok(record.attempts >= (record.phase === 'sent' ? 1 : 0));
    }
  }
}

test('decide: at most one epoch sends per record lifetime, superseded owners are refused, completed records only expire', () => {
  fc.assert(fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), run), { numRuns: 3000 });
});

test('decide: a lease that lapsed after a send is never taken over without reclaimUnknown', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 5 }), fc.integer({ min: LEASE_MS, max: 10 * LEASE_MS }), (sends, wait) => {
      const owner = 'a';
      const input: BeginInput = {
        key,
        fingerprint: 'fp',
        upstreamKey: 'uk',
        owner,
        leaseMs: LEASE_MS,
        mode: 'join',
        reclaimUnknown: false,
        meta,
        intent: null,
        charges: [],
        pointer: null,
        approval: null,
      };
      let record = begun(decideBegin(null, input, 0)).record;
      for (let i = 0; i < sends; i++) {
        const change = decideMarkSent(record, { key, owner, epoch: 1, leash: record.leash }, LEASE_MS, 0).change;
        assert.equal(change.kind, 'put');
        if (change.kind === 'put') record = change.record;
      }
      const other = decideBegin(record, { ...input, owner: 'b' }, wait);
      assert.equal(other.result.outcome, sends === 0 ? 'acquired' : 'unknown');
    }),
  );
});

test('decide: a reclaimed unknown record whose new owner vanished before sending stays unknown (fix)', () => {
  const base: BeginInput = {
    key,
    fingerprint: 'fp',
    upstreamKey: 'uk',
    owner: 'a',
    leaseMs: LEASE_MS,
    mode: 'join',
    reclaimUnknown: false,
    meta,
    intent: null,
    charges: [],
    pointer: null,
    approval: null,
  };
  let record = begun(decideBegin(null, base, 0)).record;
  const put = (change: Change): IdemRecord => {
    assert.equal(change.kind, 'put');
    return change.kind === 'put' ? change.record : record;
  };
  record = put(decideMarkSent(record, { key, owner: 'a', epoch: 1, leash: record.leash }, LEASE_MS, 10).change);
  record = put(decideFinish(record, { key, owner: 'a', epoch: 1, leash: record.leash }, finishOutcome('unknown'), 20).change);
  const reclaim = decideBegin(record, { ...base, owner: 'b', reclaimUnknown: true }, 30);
  assert.equal(reclaim.result.outcome, 'acquired');
  record = put(reclaim.change);
  assert.equal(record.phase, 'claimed');
  assert.equal(record.attempts, 1);
  // b vanished before sending; an instance that may not reclaim must not re-send a write that may have run.
  const later = decideBegin(record, { ...base, owner: 'c' }, 30 + 2 * LEASE_MS);
  assert.equal(later.result.outcome, 'unknown');
  assert.equal(isUnknown(record, 30 + 2 * LEASE_MS), true);
  // One that may reclaim still can.
  assert.equal(decideBegin(record, { ...base, owner: 'd', reclaimUnknown: true }, 30 + 2 * LEASE_MS).result.outcome, 'acquired');
});
