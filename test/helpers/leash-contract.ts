// The agent leash's part of the store contract (DESIGN §10.1–10.2): the intent index and budget
// holds, checked and changed atomically with the claim. Every store runs it and must give the same
// answers, counted on the store's own counters.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BeginInput, BeginResult, Charge, IdemRecord, IntentClaim, RecordKey, Store } from '../../src/store/store.js';
import { input as contractInput, LEASE_MS, scopedStoreTest, type ContractStore } from './store-contract.js';

function newKey(scope: string): RecordKey {
  return { scope, upstream: 'payments', keyHash: randomUUID().replaceAll('-', '') };
}

function charge(amount: number, over: Partial<Charge> = {}): Charge {
  return { bucket: 'daily-usd:d2026-12-07', amount, limit: 1000, resetAt: Date.now() + 3_600_000, ...over };
}

function guard(hash = 'intent-1', over: Partial<IntentClaim> = {}): IntentClaim {
  return { hash, windowMs: 60_000, mode: 'guard', ...over };
}

/** The store contract's begin, with an upstream key of its own per record. */
function input(key: RecordKey, over: Partial<BeginInput> = {}): BeginInput {
  return contractInput(key, { upstreamKey: `ukey-${key.keyHash.slice(0, 8)}`, ...over });
}

type Acquired = Extract<BeginResult, { record: IdemRecord }>;

function acquired(result: BeginResult): Acquired {
  assert.equal(result.outcome, 'acquired');
  return result as Acquired;
}

const fenceOf = (key: RecordKey, { record }: Acquired) => ({ key, owner: record.owner, epoch: record.epoch, leash: record.leash });

const complete = (status: number) => ({ kind: 'complete', status, requestId: null, response: null, ttlSec: 60, tombstoneSec: 60 }) as const;

export function leashContract(name: string, makeStore: () => Promise<ContractStore>): void {
  const withStore = scopedStoreTest(makeStore);

  /** The agent's counter of the default bucket: [used, held], or null when it has none. */
  async function counter(store: Store, scope: string, bucket = charge(0).bucket): Promise<[number, number] | null> {
    const found = await store.budgetCounters({ scope, scopePrefix: 'live:', buckets: [bucket] });
    return found.length === 0 ? null : [found[0]!.used, found[0]!.held];
  }

  describe(`leash contract: ${name}`, () => {
    withStore('another key with the same intent is refused, naming the holder; nothing is created', async (store, scope) => {
      const a = newKey(scope);
      const first = acquired(await store.begin(input(a, { intent: guard() })));
      assert.equal(first.record.leash.intent, 'intent-1');
      const b = newKey(scope);
      const second = await store.begin(input(b, { intent: guard(), charges: [charge(5)] }));
      assert.equal(second.outcome, 'intent_duplicate');
      assert.ok(second.outcome === 'intent_duplicate');
      assert.equal(second.holder.upstreamKey, first.record.upstreamKey);
      assert.equal(second.holder.state, 'in_flight');
      assert.deepEqual(second.holder.meta, first.record.meta);
      assert.equal(await store.get(b), null);
      assert.equal(await counter(store, scope), null, 'a refused write reserves nothing');
      // The holder's own key joins its record as before.
      assert.equal((await store.begin(input(a, { intent: guard() }))).outcome, 'in_use');
    });

    withStore('Idempotency-Intent: new (claim) takes the intent over; the earlier holder keeps its record', async (store, scope) => {
      const a = newKey(scope);
      acquired(await store.begin(input(a, { intent: guard() })));
      const b = newKey(scope);
      const taken = acquired(await store.begin(input(b, { intent: guard('intent-1', { mode: 'claim' }) })));
      const c = await store.begin(input(newKey(scope), { intent: guard() }));
      assert.ok(c.outcome === 'intent_duplicate');
      assert.equal(c.holder.upstreamKey, taken.record.upstreamKey);
    });

    withStore('the holder settles: completed names its status; released or refused 4xx frees the intent', async (store, scope) => {
      const a = newKey(scope);
      const first = acquired(await store.begin(input(a, { intent: guard('i-ok') })));
      await store.markSent(fenceOf(a, first), LEASE_MS);
      assert.equal(await store.finish(fenceOf(a, first), complete(201)), 'ok');
      const dup = await store.begin(input(newKey(scope), { intent: guard('i-ok') }));
      assert.ok(dup.outcome === 'intent_duplicate');
      assert.equal(dup.holder.state, 'completed');
      assert.equal(dup.holder.status, 201);

      for (const settle of [{ kind: 'release' } as const, complete(402)]) {
        const hash = `i-${settle.kind}`;
        const k = newKey(scope);
        const held = acquired(await store.begin(input(k, { intent: guard(hash) })));
        await store.markSent(fenceOf(k, held), LEASE_MS);
        assert.equal(await store.finish(fenceOf(k, held), settle), 'ok');
        acquired(await store.begin(input(newKey(scope), { intent: guard(hash) })));
      }
    });

    withStore('an unknown outcome keeps its intent; resolving it not_executed frees it', async (store, scope) => {
      const a = newKey(scope);
      const first = acquired(await store.begin(input(a, { intent: guard('i-unk'), charges: [charge(300)] })));
      await store.markSent(fenceOf(a, first), LEASE_MS);
      await store.finish(fenceOf(a, first), { kind: 'unknown', status: null, requestId: null, reason: 'timeout' });
      const dup = await store.begin(input(newKey(scope), { intent: guard('i-unk') }));
      assert.ok(dup.outcome === 'intent_duplicate');
      assert.equal(dup.holder.state, 'outcome_unknown');
      assert.deepEqual(await counter(store, scope), [300, 300], 'an unknown outcome stays counted');
      const record = (await store.get(a))!;
      assert.equal(await store.resolve(a, record, { kind: 'not_executed' }), 'ok');
      assert.deepEqual(await counter(store, scope), [0, 0]);
      acquired(await store.begin(input(newKey(scope), { intent: guard('i-unk') })));
    });

    withStore('an intent is remembered for its window only', async (store, scope) => {
      acquired(await store.begin(input(newKey(scope), { intent: guard('i-win', { windowMs: 150 }) })));
      assert.equal((await store.begin(input(newKey(scope), { intent: guard('i-win') }))).outcome, 'intent_duplicate');
      await sleep(250);
      acquired(await store.begin(input(newKey(scope), { intent: guard('i-win') })));
    });

    withStore('intents are per agent and per upstream', async (store, scope) => {
      acquired(await store.begin(input(newKey(scope), { intent: guard('i-scope') })));
      acquired(await store.begin(input(newKey(`${scope}-other`), { intent: guard('i-scope') })));
      acquired(await store.begin(input({ ...newKey(scope), upstream: 'payouts' }, { intent: guard('i-scope') })));
    });

    withStore(
      'a hold: reserved on the claim, spent on 2xx, released on release, 4xx or not_executed, kept while unknown',
      async (store, scope) => {
        const run = async (settle: (k: RecordKey, a: Acquired) => Promise<unknown>): Promise<void> => {
          const k = newKey(scope);
          const a = acquired(await store.begin(input(k, { charges: [charge(100)] })));
          assert.deepEqual(a.record.leash.holds, [{ bucket: charge(0).bucket, amount: 100 }]);
          await store.markSent(fenceOf(k, a), LEASE_MS);
          await settle(k, a);
        };
        await run((k, a) => store.finish(fenceOf(k, a), complete(201)));
        assert.deepEqual(await counter(store, scope), [100, 0], 'spent');
        await run((k, a) => store.finish(fenceOf(k, a), { kind: 'release' }));
        assert.deepEqual(await counter(store, scope), [100, 0], 'released');
        await run((k, a) => store.finish(fenceOf(k, a), complete(400)));
        assert.deepEqual(await counter(store, scope), [100, 0], 'a definitive 4xx released');
        await run((k, a) => store.finish(fenceOf(k, a), complete(503)));
        assert.deepEqual(await counter(store, scope), [200, 0], 'a stored 5xx may have run: spent');
        await run((k, a) => store.finish(fenceOf(k, a), { kind: 'unknown', status: 502, requestId: null, reason: 'upstream_502' }));
        assert.deepEqual(await counter(store, scope), [300, 100], 'held while unknown');
        const [letter] = await store.deadLetters(10);
        assert.ok(letter !== undefined);
        assert.equal(
          await store.resolve(letter.key, letter.record, { kind: 'executed', status: 201, response: null, ttlSec: 60, tombstoneSec: 60 }),
          'ok',
        );
        assert.deepEqual(await counter(store, scope), [300, 0], 'resolved executed: spent');
      },
    );

    withStore('a retry, a replay or a takeover of the same key never reserves twice', async (store, scope) => {
      const k = newKey(scope);
      const first = acquired(await store.begin(input(k, { charges: [charge(100)], leaseMs: 100 })));
      assert.equal((await store.begin(input(k, { charges: [charge(100)] }))).outcome, 'in_use');
      await sleep(150);
      // The claim was never sent: the next begin takes it over, hold and all.
      const taken = acquired(await store.begin(input(k, { charges: [charge(100)] })));
      assert.equal(taken.record.epoch, first.record.epoch + 1);
      assert.deepEqual(await counter(store, scope), [100, 100]);
      await store.markSent(fenceOf(k, taken), LEASE_MS);
      await store.finish(fenceOf(k, taken), complete(201));
      assert.equal((await store.begin(input(k, { charges: [charge(100)] }))).outcome, 'replay');
      assert.deepEqual(await counter(store, scope), [100, 0]);
    });

    withStore('over a budget: refused whole, naming the budget and what was used; nothing claimed or reserved', async (store, scope) => {
      acquired(await store.begin(input(newKey(scope), { charges: [charge(700)] })));
      const k = newKey(scope);
      const refused = await store.begin(input(k, { charges: [charge(301)] }));
      assert.ok(refused.outcome === 'limit_exceeded');
      assert.deepEqual(refused.refusal, { ...charge(301), used: 700, resetAt: refused.refusal.resetAt });
      assert.equal(await store.get(k), null);
      assert.deepEqual(await counter(store, scope), [700, 700]);
      acquired(await store.begin(input(newKey(scope), { charges: [charge(300)] })));
      assert.deepEqual(await counter(store, scope), [1000, 1000]);
    });

    withStore('amounts up to 2^53 − 1 minor units are counted and reported exactly', async (store, scope) => {
      const max = Number.MAX_SAFE_INTEGER;
      const big = (amount: number): Charge => charge(amount, { limit: max });
      acquired(await store.begin(input(newKey(scope), { charges: [big(max - 1)] })));
      const refused = await store.begin(input(newKey(scope), { charges: [big(2)] }));
      assert.ok(refused.outcome === 'limit_exceeded');
      assert.equal(refused.refusal.used, max - 1);
      acquired(await store.begin(input(newKey(scope), { charges: [big(1)] })));
      assert.deepEqual(await counter(store, scope), [max, max]);
    });

    withStore('several budgets on one write: all must fit; the first that does not is named', async (store, scope) => {
      const count = (n: number): Charge => charge(1, { bucket: 'per-minute:m1', limit: n });
      acquired(await store.begin(input(newKey(scope), { charges: [charge(10), count(2)] })));
      acquired(await store.begin(input(newKey(scope), { charges: [charge(10), count(2)] })));
      const refused = await store.begin(input(newKey(scope), { charges: [charge(10), count(2)] }));
      assert.ok(refused.outcome === 'limit_exceeded');
      assert.equal(refused.refusal.bucket, 'per-minute:m1');
      assert.deepEqual(await counter(store, scope), [20, 20], 'the fitting budget was not reserved either');
    });

    withStore('200 concurrent writes of 7 against 1000: exactly 142 claimed', async (store, scope) => {
      const results = await Promise.all(
        Array.from({ length: 200 }, () => store.begin(input(newKey(scope), { charges: [charge(7)], leaseMs: 10_000 }))),
      );
      assert.equal(results.filter((r) => r.outcome === 'acquired').length, 142);
      assert.equal(results.filter((r) => r.outcome === 'limit_exceeded').length, 58);
      assert.deepEqual(await counter(store, scope), [994, 994]);
    });

    withStore(
      'a begin refused by the leash moves no derived-key pointer (an earlier operation keeps its retries)',
      async (store, scope) => {
        const derived = newKey(scope);
        const pointer = (n: number) => ({ from: derived.keyHash, operationKey: `wgd_p.${n}`, ttlMs: 60_000 });
        acquired(await store.begin(input(newKey(scope), { pointer: pointer(1), charges: [charge(900)], intent: guard('i-p') })));
        assert.equal((await store.begin(input(newKey(scope), { pointer: pointer(2), charges: [charge(200)] }))).outcome, 'limit_exceeded');
        assert.equal((await store.begin(input(newKey(scope), { pointer: pointer(3), intent: guard('i-p') }))).outcome, 'intent_duplicate');
        assert.equal(await store.latestOperation(derived), 'wgd_p.1');
      },
    );

    withStore(
      'the breaker: the refusal that reaches the count pauses the agent on this upstream only, until resumed',
      async (store, scope) => {
        const rule = { refusals: 3, windowMs: 60_000, pauseMs: 60_000 };
        assert.equal(await store.noteRefusal(scope, 'payments', rule), null);
        assert.equal(await store.noteRefusal(scope, 'payments', rule), null);
        assert.equal(await store.pausedUntil(scope, 'payments'), null);
        const until = await store.noteRefusal(scope, 'payments', rule);
        assert.ok(until !== null && until > Date.now() + 50_000 && until < Date.now() + 70_000, `paused until ${until}`);
        assert.equal(await store.pausedUntil(scope, 'payments'), until);
        assert.equal(await store.pausedUntil(scope, 'payouts'), null, 'another upstream');
        assert.equal(await store.pausedUntil(`${scope}-other`, 'payments'), null, 'another agent');
        assert.equal(await store.resume(scope, ['payments', 'payouts']), true);
        assert.equal(await store.pausedUntil(scope, 'payments'), null);
        assert.equal(await store.resume(scope, ['payments']), false, 'nothing left to resume');
        assert.equal(await store.noteRefusal(scope, 'payments', rule), null, 'the count started again');
      },
    );

    withStore('the breaker: refusals spread wider than the window never pause; a pause ends by itself', async (store, scope) => {
      const rule = { refusals: 2, windowMs: 150, pauseMs: 200 };
      assert.equal(await store.noteRefusal(scope, 'payments', rule), null);
      await sleep(200);
      assert.equal(await store.noteRefusal(scope, 'payments', rule), null, 'the first one left the window');
      assert.ok((await store.noteRefusal(scope, 'payments', rule)) !== null);
      await sleep(260);
      assert.equal(await store.pausedUntil(scope, 'payments'), null);
    });

    withStore("a period's counter expires when the period ends", async (store, scope) => {
      const bucket = 'per-minute:m-test';
      acquired(await store.begin(input(newKey(scope), { charges: [charge(1, { bucket, limit: 1, resetAt: Date.now() + 200 })] })));
      assert.equal((await store.begin(input(newKey(scope), { charges: [charge(1, { bucket, limit: 1 })] }))).outcome, 'limit_exceeded');
      await sleep(300);
      assert.equal(await counter(store, scope, bucket), null);
    });

    withStore('holds settled after their period ended give nothing back: the expired counter stays gone', async (store, scope) => {
      const bucket = 'per-minute:m-ended';
      const resetAt = Date.now() + 200;
      const spent = newKey(scope);
      const released = newKey(scope);
      const a = acquired(await store.begin(input(spent, { charges: [charge(1, { bucket, limit: 5, resetAt })] })));
      const b = acquired(await store.begin(input(released, { charges: [charge(2, { bucket, limit: 5, resetAt })] })));
      assert.deepEqual(await counter(store, scope, bucket), [3, 3]);
      await sleep(300);
      assert.equal(await counter(store, scope, bucket), null);
      assert.equal(await store.finish(fenceOf(spent, a), complete(201)), 'ok');
      assert.equal(await store.finish(fenceOf(released, b), { kind: 'release' }), 'ok');
      assert.equal(await counter(store, scope, bucket), null, 'no counter without an expiry left behind');
      // The next period starts from zero, with its own expiry.
      acquired(await store.begin(input(newKey(scope), { charges: [charge(4, { bucket, limit: 5, resetAt: Date.now() + 200 })] })));
      assert.deepEqual(await counter(store, scope, bucket), [4, 4]);
      await sleep(300);
      assert.equal(await counter(store, scope, bucket), null);
    });

    withStore('counters are listed per agent, or for every agent of a namespace', async (store, scope) => {
      const other = `${scope}-b`;
      acquired(await store.begin(input(newKey(scope), { charges: [charge(5)] })));
      acquired(await store.begin(input(newKey(other), { charges: [charge(6)] })));
      acquired(await store.begin(input(newKey('test:elsewhere'), { charges: [charge(7)] })));
      const all = await store.budgetCounters({ scope: null, scopePrefix: 'live:', buckets: [charge(0).bucket, 'unrelated:x'] });
      const mine = all.filter((c) => c.scope === scope || c.scope === other).sort((a, b) => a.used - b.used);
      assert.deepEqual(mine, [
        { scope, bucket: charge(0).bucket, used: 5, held: 5 },
        { scope: other, bucket: charge(0).bucket, used: 6, held: 6 },
      ]);
      assert.ok(all.every((c) => c.scope.startsWith('live:')));
    });
  });
}
