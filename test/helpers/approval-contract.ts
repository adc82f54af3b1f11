// Approvals' part of the store contract (DESIGN §10.4): a write above a threshold is recorded
// `awaiting_approval` with its holds taken, answered by the decision on every re-send; the decision
// is a compare-and-set on the epoch read; denial and expiry release the holds. Every store runs it
// and must give the same answers, counted on the store's own counters.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BeginInput, BeginResult, Charge, IdemRecord, RecordKey, Store } from '../../src/store/store.js';
import { input as contractInput, LEASE_MS, scopedStoreTest, type ContractStore } from './store-contract.js';

const BUCKET = 'daily-usd:d2026-12-07';
const AMOUNT = 300;

function newKey(scope: string): RecordKey {
  return { scope, upstream: 'payments', keyHash: randomUUID().replaceAll('-', '') };
}

function charge(amount = AMOUNT, over: Partial<Charge> = {}): Charge {
  return { bucket: BUCKET, amount, limit: 1000, resetAt: Date.now() + 3_600_000, ...over };
}

/** A begin above a threshold: the default charge and an approval of `ttlMs`. */
function held(key: RecordKey, ttlMs = 60_000, over: Partial<BeginInput> = {}): BeginInput {
  return contractInput(key, {
    upstreamKey: `ukey-${key.keyHash.slice(0, 8)}`,
    charges: [charge()],
    approval: { amount: AMOUNT, ttlMs },
    ...over,
  });
}

type WithRecord = Extract<BeginResult, { record: IdemRecord }>;

function outcome(result: BeginResult, expected: BeginResult['outcome']): WithRecord {
  assert.equal(result.outcome, expected);
  assert.ok('record' in result);
  return result;
}

const complete = { kind: 'complete', status: 201, requestId: null, response: null, ttlSec: 60, tombstoneSec: 60 } as const;

export function approvalContract(name: string, makeStore: () => Promise<ContractStore>): void {
  const withStore = scopedStoreTest(makeStore);

  /** The agent's counter: [used, held], or null when it has none. */
  async function counter(store: Store, scope: string): Promise<[number, number] | null> {
    const found = await store.budgetCounters({ scope, scopePrefix: 'live:', buckets: [BUCKET] });
    return found.length === 0 ? null : [found[0]!.used, found[0]!.held];
  }

  /** Whether `approvals()` lists this key (with the record as stored). */
  async function listed(store: Store, key: RecordKey): Promise<IdemRecord | null> {
    const found = (await store.approvals(100)).find((a) => a.key.scope === key.scope && a.key.keyHash === key.keyHash);
    if (found !== undefined) assert.deepEqual(found.key, key);
    return found?.record ?? null;
  }

  describe(`approval contract: ${name}`, () => {
    withStore('begin above a threshold: approval_required, awaiting_approval, holds reserved, listed', async (store, scope) => {
      const k = newKey(scope);
      const start = Date.now();
      const r = outcome(await store.begin(held(k)), 'approval_required');
      assert.equal(r.record.state, 'awaiting_approval');
      assert.equal(r.record.epoch, 1);
      assert.equal(r.record.attempts, 0);
      assert.equal(r.record.upstreamKey, `ukey-${k.keyHash.slice(0, 8)}`);
      assert.deepEqual(r.record.leash.holds, [{ bucket: BUCKET, amount: AMOUNT }]);
      assert.equal(r.record.approval?.state, 'pending');
      assert.equal(r.record.approval?.amount, AMOUNT);
      const expiresAt = r.record.approval!.expiresAt;
      assert.ok(expiresAt >= start + 59_000 && expiresAt <= Date.now() + 61_000, `expires ${expiresAt - start} ms after begin`);
      assert.deepEqual(await store.get(k), r.record);
      assert.deepEqual(await counter(store, scope), [AMOUNT, AMOUNT], 'its hold is taken');
      assert.deepEqual(await listed(store, k), r.record);
      // Nothing is sent: the record is no dead letter and nobody's claim.
      assert.equal((await store.deadLetters(100)).filter((d) => d.key.scope === scope).length, 0);
    });

    withStore('a pending approval cannot be outspent; one over the budget is refused, not recorded', async (store, scope) => {
      outcome(await store.begin(held(newKey(scope))), 'approval_required');
      const fitsIfIgnored = newKey(scope);
      const refused = await store.begin(contractInput(fitsIfIgnored, { charges: [charge(800)] }));
      assert.ok(refused.outcome === 'limit_exceeded');
      assert.equal(refused.refusal.used, AMOUNT);
      const over = newKey(scope);
      const overApproval = await store.begin(held(over, 60_000, { charges: [charge(701)], approval: { amount: 701, ttlMs: 60_000 } }));
      assert.equal(overApproval.outcome, 'limit_exceeded');
      assert.equal(await store.get(over), null);
      assert.equal(await listed(store, over), null);
      assert.deepEqual(await counter(store, scope), [AMOUNT, AMOUNT]);
    });

    withStore('re-begin: pending (fresh mode too, nothing reserved twice); another fingerprint → mismatch', async (store, scope) => {
      const k = newKey(scope);
      const first = outcome(await store.begin(held(k)), 'approval_required');
      const again = outcome(await store.begin(held(k)), 'approval_pending');
      assert.deepEqual(again.record, first.record);
      // A keyless write's plain re-send (mode fresh) is joined by its intent, not refused as a duplicate.
      outcome(await store.begin(held(k, 60_000, { mode: 'fresh' })), 'approval_pending');
      outcome(await store.begin(held(k, 60_000, { fingerprint: 'fp-other' })), 'mismatch');
      assert.deepEqual(await counter(store, scope), [AMOUNT, AMOUNT]);
      assert.deepEqual(await store.get(k), first.record);
    });

    withStore('approve, fenced on the epoch → the next begin acquires (epoch+1, holds kept); finish spends', async (store, scope) => {
      const k = newKey(scope);
      const { record } = outcome(await store.begin(held(k)), 'approval_required');
      assert.equal(await store.decideApproval(k, { epoch: record.epoch + 1, leash: record.leash }, 'approve'), 'stale');
      assert.equal((await store.get(k))?.approval?.state, 'pending', 'a stale decision changes nothing');
      assert.equal(await store.decideApproval(k, record, 'approve'), 'ok');
      assert.equal(await store.decideApproval(k, record, 'approve'), 'stale', 'decided already');
      assert.equal(await store.decideApproval(k, record, 'deny'), 'stale', 'decided already');
      assert.equal(await listed(store, k), null, 'no longer pending');
      assert.deepEqual(await counter(store, scope), [AMOUNT, AMOUNT], 'still held');

      const run = held(k);
      const taken = outcome(await store.begin(run), 'acquired');
      assert.equal(taken.record.state, 'in_flight');
      assert.equal(taken.record.epoch, record.epoch + 1);
      assert.equal(taken.record.owner, run.owner);
      assert.equal(taken.record.upstreamKey, record.upstreamKey);
      assert.deepEqual(taken.record.leash, record.leash);
      assert.equal(taken.record.approval?.state, 'approved', 'kept for the record');
      assert.deepEqual(await counter(store, scope), [AMOUNT, AMOUNT], 'not reserved twice');
      // Approved once: a second re-send while it runs is in use, not a second claim.
      assert.equal((await store.begin(held(k))).outcome, 'in_use');
      const fence = { key: k, owner: run.owner, epoch: taken.record.epoch, leash: taken.record.leash };
      assert.equal(await store.markSent(fence, LEASE_MS), 'ok');
      assert.equal(await store.finish(fence, complete), 'ok');
      assert.deepEqual(await counter(store, scope), [AMOUNT, 0], 'spent');
      outcome(await store.begin(held(k)), 'replay');
      assert.deepEqual(await counter(store, scope), [AMOUNT, 0]);
    });

    withStore('deny → holds and intent released; every begin after is approval_denied; not listed', async (store, scope) => {
      const k = newKey(scope);
      const intent = { hash: 'i-deny', windowMs: 60_000, mode: 'guard' as const };
      const { record } = outcome(await store.begin(held(k, 60_000, { intent })), 'approval_required');
      assert.equal(await store.decideApproval(k, { epoch: 7, leash: record.leash }, 'deny'), 'stale');
      assert.equal(await store.decideApproval(k, record, 'deny'), 'ok');
      assert.deepEqual(await counter(store, scope), [0, 0], 'released');
      assert.equal(await listed(store, k), null);
      for (let i = 0; i < 2; i++) outcome(await store.begin(held(k)), 'approval_denied');
      outcome(await store.begin(held(k, 60_000, { mode: 'fresh' })), 'approval_denied');
      assert.equal((await store.get(k))?.approval?.state, 'denied');
      assert.equal(await store.decideApproval(k, record, 'approve'), 'stale', 'denied for good');
      assert.deepEqual(await counter(store, scope), [0, 0], 'a begin on a denied record reserves nothing');
      // Its intent is free again: another operation with it is admitted.
      outcome(await store.begin(contractInput(newKey(scope), { intent })), 'acquired');
    });

    withStore('expiry: pending until ttl; then approval_expired, expire → ok, holds released; approve → stale', async (store, scope) => {
      const k = newKey(scope);
      const { record } = outcome(await store.begin(held(k, 150)), 'approval_required');
      assert.equal(await store.decideApproval(k, record, 'expire'), 'stale', 'not yet past its time');
      outcome(await store.begin(held(k)), 'approval_pending');
      await sleep(250);
      const late = outcome(await store.begin(held(k)), 'approval_expired');
      assert.equal(late.record.approval?.state, 'pending', 'the begin only reports it');
      assert.equal(await store.decideApproval(k, record, 'approve'), 'stale', 'too late to approve');
      assert.equal(await store.decideApproval(k, record, 'expire'), 'ok');
      assert.equal(await store.decideApproval(k, record, 'expire'), 'stale', 'expired once');
      assert.deepEqual(await counter(store, scope), [0, 0], 'released');
      assert.equal((await store.get(k))?.approval?.state, 'expired');
      assert.equal(await listed(store, k), null);
      outcome(await store.begin(held(k)), 'approval_expired');
      assert.deepEqual(await counter(store, scope), [0, 0]);
    });

    withStore('two decisions at once: exactly one applies, and the record and counter follow it', async (store, scope) => {
      for (const [a, b] of [
        ['approve', 'deny'],
        ['deny', 'approve'],
        ['approve', 'approve'],
        ['deny', 'deny'],
      ] as const) {
        const k = newKey(scope);
        const { record } = outcome(await store.begin(held(k)), 'approval_required');
        const results = await Promise.all([store.decideApproval(k, record, a), store.decideApproval(k, record, b)]);
        assert.deepEqual([...results].sort(), ['ok', 'stale'], `${a} vs ${b}`);
        const won = results[0] === 'ok' ? a : b;
        assert.equal((await store.get(k))?.approval?.state, won === 'approve' ? 'approved' : 'denied');
        outcome(await store.begin(held(k)), won === 'approve' ? 'acquired' : 'approval_denied');
        const expected: [number, number] = won === 'approve' ? [AMOUNT, AMOUNT] : [0, 0];
        assert.deepEqual(await counter(store, scope), expected);
        if (won === 'approve') {
          // Give it back, so the next round starts from an empty counter.
          const r = (await store.get(k))!;
          assert.equal(await store.finish({ key: k, owner: r.owner, epoch: r.epoch, leash: r.leash }, { kind: 'release' }), 'ok');
        }
      }
    });

    withStore('another key with the intent of a pending approval names it as waiting for approval', async (store, scope) => {
      const intent = { hash: 'i-wait', windowMs: 60_000, mode: 'guard' as const };
      const k = newKey(scope);
      const { record } = outcome(await store.begin(held(k, 60_000, { intent })), 'approval_required');
      const dup = await store.begin(contractInput(newKey(scope), { intent }));
      assert.ok(dup.outcome === 'intent_duplicate');
      assert.equal(dup.holder.upstreamKey, record.upstreamKey);
      assert.equal(dup.holder.state, 'awaiting_approval');
    });

    withStore('approvals(limit): pending ones of every agent, oldest first', async (store, scope) => {
      const keys = [newKey(scope), newKey(`${scope}-b`), newKey(scope)];
      for (const k of keys) {
        outcome(await store.begin(held(k)), 'approval_required');
        await sleep(5);
      }
      const mine = (await store.approvals(100)).filter((a) => a.key.scope.startsWith(scope)).map((a) => a.key.keyHash);
      assert.deepEqual(
        mine,
        keys.map((k) => k.keyHash),
      );
      assert.equal((await store.approvals(1)).length, 1);
    });
  });
}
