// The store contract against the memory store, and the memory store's own bound (records and bytes).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { MEMORY_STORE_DEFAULTS } from '../../src/config/schema.js';
import { MemoryStore } from '../../src/store/memory.js';
import {
  StoreFullError,
  type BeginInput,
  type BeginResult,
  type Fence,
  type FinishOutcome,
  type IdemRecord,
  type RecordKey,
  type Store,
  type StoredResponse,
} from '../../src/store/store.js';
import { approvalContract } from '../helpers/approval-contract.js';
import { leashContract } from '../helpers/leash-contract.js';
import { storeContract, type ContractStore } from '../helpers/store-contract.js';

/** A begin the leash cannot refuse (no intent, no charges): its answer always has a record. */
async function begin(store: Store, given: BeginInput): Promise<Extract<BeginResult, { record: IdemRecord }>> {
  const result = await store.begin(given);
  assert.ok('record' in result, `unexpected ${result.outcome}`);
  return result;
}

const makeStore = async (): Promise<ContractStore> => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
};

storeContract('memory', makeStore);
leashContract('memory', makeStore);
approvalContract('memory', makeStore);

// The bound (records and bytes): full → new records refused with StoreFullError; nothing unexpired is
// ever dropped; a record past its own TTL is swept to make room; steps on existing records always apply.
describe('memory store: bounded, never evicting', () => {
  const meta = { method: 'POST', path: '/v1/payments', keySource: 'client' as const };
  let n = 0;
  const newKey = (): RecordKey => ({ scope: 'test:agent', upstream: 'payments', keyHash: `k${++n}` });
  const input = (key: RecordKey, owner = randomUUID()): BeginInput => ({
    key,
    fingerprint: 'fp-1',
    upstreamKey: `up-${key.keyHash}`,
    owner,
    leaseMs: 1000,
    mode: 'join',
    reclaimUnknown: false,
    meta,
    intent: null,
    charges: [],
    pointer: null,
    approval: null,
  });
  const response = (bodyBytes: number): StoredResponse => ({
    status: 201,
    headers: { 'content-type': 'application/json' },
    body: Buffer.alloc(bodyBytes, 7),
  });
  const complete = (bodyBytes: number, ttlSec: number, tombstoneSec: number): FinishOutcome => ({
    kind: 'complete',
    status: 201,
    requestId: 'req_1',
    response: response(bodyBytes),
    ttlSec,
    tombstoneSec,
  });
  const fakeClock = () => {
    const clock = { now: 1_000_000, tick: (ms: number) => (clock.now += ms), read: () => clock.now };
    return clock;
  };
  const isFull = (err: unknown): boolean => err instanceof StoreFullError && err.code === 'store_full';

  /** Begins and completes a write; returns its fence. */
  async function write(store: MemoryStore, key: RecordKey, outcome: FinishOutcome): Promise<Fence> {
    const begun = await store.begin(input(key));
    assert.equal(begun.outcome, 'acquired');
    const fence = { key, owner: begun.record.owner, epoch: begun.record.epoch, leash: begun.record.leash };
    assert.equal(await store.markSent(fence, 1000), 'ok');
    assert.equal(await store.finish(fence, outcome), 'ok');
    return fence;
  }

  test('new MemoryStore(clock) still works, with the default limits', async () => {
    const clock = fakeClock();
    const store = new MemoryStore(clock.read);
    try {
      assert.deepEqual({ maxRecords: store.usage().maxRecords, maxBytes: store.usage().maxBytes }, MEMORY_STORE_DEFAULTS);
      await write(store, newKey(), complete(10, 60, 60));
      assert.equal(store.usage().records, 1);
    } finally {
      await store.close();
    }
  });

  test('maxRecords: a new key is refused when full, while replays, resends and finishes still apply', async () => {
    const clock = fakeClock();
    const store = new MemoryStore(clock.read, { maxRecords: 2 });
    try {
      const a = newKey();
      await write(store, a, complete(10, 60, 60));
      const b = newKey();
      const bBegin = input(b);
      const begunB = await store.begin(bBegin);
      assert.equal(begunB.outcome, 'acquired');
      await assert.rejects(store.begin(input(newKey())), isFull);
      // Existing records: a replay, the in-flight writer's own resent begin, its markSent, renew and finish.
      assert.equal((await store.begin(input(a))).outcome, 'replay');
      assert.equal((await store.begin(bBegin)).outcome, 'acquired');
      const fenceB = { key: b, owner: bBegin.owner, epoch: begunB.record.epoch, leash: begunB.record.leash };
      assert.equal(await store.markSent(fenceB, 1000), 'ok');
      assert.equal(await store.renew(fenceB, 1000), 'ok');
      assert.equal(await store.finish(fenceB, complete(10, 60, 60)), 'ok');
      assert.equal(store.usage().records, 2);
      await assert.rejects(store.begin(input(newKey())), isFull);
    } finally {
      await store.close();
    }
  });

  test('nothing unexpired is ever dropped: in flight, unknown and completed records survive a full store', async () => {
    const clock = fakeClock();
    const store = new MemoryStore(clock.read, { maxRecords: 3 });
    try {
      const inFlight = newKey();
      assert.equal((await store.begin(input(inFlight))).outcome, 'acquired');
      const unknown = newKey();
      const fence = await (async () => {
        const begun = await begin(store, input(unknown));
        const f = { key: unknown, owner: begun.record.owner, epoch: begun.record.epoch, leash: begun.record.leash };
        await store.markSent(f, 1000);
        return f;
      })();
      assert.equal(await store.finish(fence, { kind: 'unknown', status: 503, requestId: null, reason: '503' }), 'ok');
      const done = newKey();
      await write(store, done, complete(10, 1000, 0));
      for (let i = 0; i < 20; i++) {
        clock.tick(40_000);
        await assert.rejects(store.begin(input(newKey())), isFull);
      }
      // 800 s later: the in-flight claim's lease has long lapsed, yet it is kept (never expires).
      assert.equal((await store.get(inFlight))?.state, 'in_flight');
      assert.equal((await store.get(unknown))?.state, 'outcome_unknown');
      assert.equal((await store.get(done))?.state, 'completed');
      assert.notEqual((await store.get(done))?.response, null);
      assert.equal(store.usage().records, 3);

      // The completed record reaches the end of its own TTL: it is swept, and only it.
      clock.tick(201_000);
      assert.equal((await store.begin(input(newKey()))).outcome, 'acquired');
      assert.equal(await store.get(done), null);
      assert.equal((await store.get(inFlight))?.state, 'in_flight');
      assert.equal((await store.get(unknown))?.state, 'outcome_unknown');
      assert.equal(store.usage().records, 3);
    } finally {
      await store.close();
    }
  });

  test('maxBytes: a finish may overshoot (the write ran), a new key is then refused until the body expires', async () => {
    const clock = fakeClock();
    const store = new MemoryStore(clock.read, { maxBytes: 16_000 });
    try {
      const a = newKey();
      await write(store, a, complete(15_000, 10, 1000));
      assert.ok(store.usage().bytes > 16_000, `the stored answer overshoots: ${store.usage().bytes}`);
      assert.equal((await store.begin(input(a))).outcome, 'replay');
      await assert.rejects(store.begin(input(newKey())), isFull);
      // The response's own TTL ends: the record becomes a tombstone, its body swept, its bytes freed.
      clock.tick(11_000);
      const b = newKey();
      assert.equal((await store.begin(input(b))).outcome, 'acquired');
      assert.equal((await store.begin(input(a))).outcome, 'expired', 'the tombstone is kept');
      assert.equal((await store.get(a))?.response, null);
      assert.ok(store.usage().bytes < 16_000, `${store.usage().bytes}`);
    } finally {
      await store.close();
    }
  });

  test('accounting follows every change: releases, resolves and expiry bring the count and bytes back to zero', async () => {
    const clock = fakeClock();
    const store = new MemoryStore(clock.read, { maxRecords: 1 });
    try {
      const a = newKey();
      const begun = await begin(store, input(a));
      await assert.rejects(store.begin(input(newKey())), isFull);
      assert.equal(
        await store.finish(
          { key: a, owner: begun.record.owner, epoch: begun.record.epoch, leash: begun.record.leash },
          { kind: 'release' },
        ),
        'ok',
      );
      assert.deepEqual([store.usage().records, store.usage().bytes], [0, 0]);

      const b = newKey();
      const begunB = await begin(store, input(b));
      const fenceB = { key: b, owner: begunB.record.owner, epoch: begunB.record.epoch, leash: begunB.record.leash };
      await store.markSent(fenceB, 1000);
      await store.finish(fenceB, { kind: 'unknown', status: null, requestId: null, reason: 'timeout' });
      assert.equal(
        await store.resolve(
          b,
          { epoch: begunB.record.epoch, leash: begunB.record.leash },
          {
            kind: 'executed',
            status: 201,
            response: response(5000),
            ttlSec: 5,
            tombstoneSec: 5,
          },
        ),
        'ok',
      );
      assert.ok(store.usage().bytes > 5000);
      clock.tick(10_001);
      assert.equal(await store.get(b), null);
      assert.deepEqual([store.usage().records, store.usage().bytes], [0, 0]);

      const c = newKey();
      const begunC = await begin(store, input(c));
      const fenceC = { key: c, owner: begunC.record.owner, epoch: begunC.record.epoch, leash: begunC.record.leash };
      await store.markSent(fenceC, 1000);
      await store.finish(fenceC, { kind: 'unknown', status: null, requestId: null, reason: 'timeout' });
      assert.equal(await store.resolve(c, { epoch: begunC.record.epoch, leash: begunC.record.leash }, { kind: 'not_executed' }), 'ok');
      assert.deepEqual([store.usage().records, store.usage().bytes], [0, 0]);
    } finally {
      await store.close();
    }
  });
});
