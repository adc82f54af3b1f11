// The contract every Store must keep, written against decide.ts: the memory store and the Redis
// store run the same tests and must give the same answers. Leases and TTLs are short, waits real.
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  NO_LEASH,
  RESOLVED_WITHOUT_ANSWER,
  type BeginInput,
  type BeginResult,
  type FinishOutcome,
  type IdemRecord,
  type RecordKey,
  type Store,
  type StoredResponse,
} from '../../src/store/store.js';

export interface ContractStore {
  store: Store;
  cleanup(): Promise<void>;
}

export const LEASE_MS = 150;
/** Comfortably past a lease: timers and two processes' clocks need a margin. */
const PAST_LEASE_MS = LEASE_MS + 60;

const meta = { method: 'POST', path: '/v1/payments', keySource: 'client' as const };

/** Bytes that survive nothing but an exact copy: NUL, high bytes, invalid UTF-8. */
const bodyBytes = Buffer.from([0x00, 0x01, 0x7b, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x0a, 0x0d, 0x7d]);
const response: StoredResponse = {
  status: 201,
  headers: { 'content-type': 'application/json', 'request-id': 'req_1', vary: ['accept', 'origin'] },
  body: bodyBytes,
};

function complete(over: Partial<Extract<FinishOutcome, { kind: 'complete' }>> = {}): FinishOutcome {
  return { kind: 'complete', status: 201, requestId: 'req_1', response, ttlSec: 60, tombstoneSec: 60, ...over };
}

function newKey(scope = 'test:agent'): RecordKey {
  return { scope, upstream: 'payments', keyHash: randomUUID().replaceAll('-', '') };
}

/** A begin with neither intent nor charges, `over` on top. */
export function input(key: RecordKey, over: Partial<BeginInput> = {}): BeginInput {
  return {
    key,
    fingerprint: 'fp-1',
    upstreamKey: 'upstream-key-1',
    owner: randomUUID(),
    leaseMs: LEASE_MS,
    mode: 'join',
    reclaimUnknown: false,
    meta,
    intent: null,
    charges: [],
    pointer: null,
    approval: null,
    ...over,
  };
}

/** A begin the leash cannot refuse (no intent, no charges): its answer always has a record. */
async function begin(store: Store, given: BeginInput): Promise<Extract<BeginResult, { record: IdemRecord }>> {
  const result = await store.begin(given);
  assert.ok('record' in result, `unexpected ${result.outcome}`);
  return result;
}

/** A test with a store of its own and a fresh agent scope in it; the store is cleaned up after. */
export function scopedStoreTest(makeStore: () => Promise<ContractStore>) {
  return (title: string, body: (store: Store, scope: string) => Promise<void>): void => {
    test(title, async () => {
      const { store, cleanup } = await makeStore();
      try {
        await body(store, `live:agent-${randomUUID().slice(0, 8)}`);
      } finally {
        await cleanup();
      }
    });
  };
}

export function storeContract(name: string, makeStore: () => Promise<ContractStore>): void {
  const withStore = (title: string, body: (store: Store) => Promise<void>): void => {
    test(title, async () => {
      const { store, cleanup } = await makeStore();
      try {
        await body(store);
      } finally {
        await cleanup();
      }
    });
  };

  describe(`store contract: ${name}`, () => {
    withStore('a new begin acquires: in flight, claimed, epoch 1, the given upstream key', async (store) => {
      const key = newKey();
      const given = input(key);
      const r = await begin(store, given);
      assert.equal(r.outcome, 'acquired');
      assert.equal(r.record.state, 'in_flight');
      assert.equal(r.record.phase, 'claimed');
      assert.equal(r.record.epoch, 1);
      assert.equal(r.record.attempts, 0);
      assert.equal(r.record.owner, given.owner);
      assert.equal(r.record.upstreamKey, 'upstream-key-1');
      assert.equal(r.record.fingerprint, 'fp-1');
      assert.deepEqual(r.record.meta, meta);
      assert.ok(r.record.leaseUntil > r.record.createdAt);
      assert.deepEqual(await store.get(key), r.record);
    });

    withStore('get of an unknown key is null', async (store) => {
      assert.equal(await store.get(newKey()), null);
    });

    withStore('a resent begin with the same owner is acquired again, without a new epoch (join and fresh)', async (store) => {
      const key = newKey();
      const given = input(key);
      const first = await begin(store, given);
      const again = await begin(store, given);
      assert.equal(again.outcome, 'acquired');
      assert.deepEqual(again.record, first.record);
      const fresh = await begin(store, { ...given, mode: 'fresh' });
      assert.equal(fresh.outcome, 'acquired');
      assert.equal(fresh.record.epoch, 1);
    });

    withStore('another owner while the lease is alive gets in_use', async (store) => {
      const key = newKey();
      await begin(store, input(key));
      const other = await begin(store, input(key));
      assert.equal(other.outcome, 'in_use');
      assert.equal(other.record.epoch, 1);
    });

    withStore('markSent: ok, phase sent, attempts counted', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      assert.equal(await store.markSent(fence, LEASE_MS), 'ok');
      let now = await store.get(key);
      assert.equal(now?.phase, 'sent');
      assert.equal(now?.attempts, 1);
      assert.equal(await store.markSent(fence, LEASE_MS), 'ok');
      now = await store.get(key);
      assert.equal(now?.attempts, 2);
    });

    withStore('finish complete → a begin with the same fingerprint replays the byte-identical response', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      assert.equal(await store.markSent(fence, LEASE_MS), 'ok');
      assert.equal(await store.finish(fence, complete()), 'ok');
      const replay = await begin(store, input(key));
      assert.equal(replay.outcome, 'replay');
      assert.equal(replay.record.state, 'completed');
      assert.equal(replay.record.status, 201);
      assert.equal(replay.record.requestId, 'req_1');
      assert.deepEqual(replay.record.response, response);
      assert.ok(replay.record.response!.body.equals(bodyBytes));
      assert.equal(replay.record.epoch, 1);
      assert.equal((await store.get(key))?.state, 'completed');
      // The owner's second finish is stale: a completed record never changes.
      assert.equal(await store.finish(fence, { kind: 'release' }), 'stale');
      assert.equal(await store.markSent(fence, LEASE_MS), 'stale');
      assert.equal(await store.renew(fence, LEASE_MS), 'stale');
      assert.equal((await begin(store, input(key))).outcome, 'replay');
    });

    withStore('a response too large to keep: completed with status and request id, replayed without a body', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      assert.equal(await store.finish(fence, complete({ response: null, requestId: null, status: 200 })), 'ok');
      const replay = await begin(store, input(key));
      assert.equal(replay.outcome, 'replay');
      assert.equal(replay.record.response, null);
      assert.equal(replay.record.status, 200);
      assert.equal(replay.record.requestId, null);
      assert.equal(replay.record.reason, null);
    });

    withStore('another fingerprint → mismatch, in flight and completed', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      assert.equal((await begin(store, input(key, { fingerprint: 'fp-2' }))).outcome, 'mismatch');
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      await store.finish(fence, complete());
      const other = await begin(store, input(key, { fingerprint: 'fp-2' }));
      assert.equal(other.outcome, 'mismatch');
      assert.equal(other.record.fingerprint, 'fp-1');
    });

    withStore('mode fresh on an existing record → duplicate', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      assert.equal((await begin(store, input(key, { mode: 'fresh' }))).outcome, 'duplicate');
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      await store.finish(fence, complete());
      assert.equal((await begin(store, input(key, { mode: 'fresh' }))).outcome, 'duplicate');
    });

    withStore('finish release frees the key: the next begin creates a new record', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      assert.equal(await store.finish(fence, { kind: 'release' }), 'ok');
      assert.equal(await store.get(key), null);
      const next = await begin(store, input(key, { upstreamKey: 'upstream-key-2' }));
      assert.equal(next.outcome, 'acquired');
      assert.equal(next.record.epoch, 1);
      assert.equal(next.record.upstreamKey, 'upstream-key-2');
      // The released owner is fenced out of the new record.
      assert.equal(await store.finish(fence, complete()), 'stale');
    });

    withStore("finish unknown → begin answers unknown and a dead letter, until the owner's late answer settles it", async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      assert.equal(await store.finish(fence, { kind: 'unknown', status: 503, requestId: 'req_9', reason: 'upstream_503' }), 'ok');
      const again = await begin(store, input(key));
      assert.equal(again.outcome, 'unknown');
      assert.equal(again.record.state, 'outcome_unknown');
      assert.equal(again.record.status, 503);
      assert.equal(again.record.requestId, 'req_9');
      assert.equal(again.record.reason, 'upstream_503');
      const letters = await store.deadLetters(10);
      assert.equal(letters.length, 1);
      assert.deepEqual(letters[0]!.key, key);
      assert.equal(letters[0]!.record.state, 'outcome_unknown');
      assert.equal(letters[0]!.record.epoch, 1);
      // The owner's late answer settles it: nothing of the unknown outcome stays (an answer with no request id has none).
      assert.equal(await store.finish(fence, complete({ requestId: null })), 'ok');
      const replay = await begin(store, input(key));
      assert.equal(replay.outcome, 'replay');
      assert.equal(replay.record.reason, null);
      assert.equal(replay.record.requestId, null);
      assert.deepEqual(await store.deadLetters(10), []);
    });

    withStore('finish unknown with no status and no request id keeps them null', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      assert.equal(await store.finish(fence, { kind: 'unknown', status: null, requestId: null, reason: 'timeout' }), 'ok');
      const now = await store.get(key);
      assert.equal(now?.status, null);
      assert.equal(now?.requestId, null);
      assert.equal(now?.reason, 'timeout');
    });

    withStore('reclaimUnknown → acquired with epoch+1 and the upstream key fixed at creation', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      await store.finish(fence, { kind: 'unknown', status: 502, requestId: null, reason: 'upstream_502' });
      const reclaim = await begin(store, input(key, { reclaimUnknown: true, upstreamKey: 'another-key' }));
      assert.equal(reclaim.outcome, 'acquired');
      assert.equal(reclaim.record.epoch, 2);
      assert.equal(reclaim.record.state, 'in_flight');
      assert.equal(reclaim.record.upstreamKey, 'upstream-key-1');
      assert.deepEqual(await store.deadLetters(10), []);
      // The first owner's late answer never overwrites the newer attempt.
      assert.equal(await store.finish(fence, complete()), 'stale');
      const fence2 = { key, owner: reclaim.record.owner, epoch: 2, leash: NO_LEASH };
      assert.equal(await store.markSent(fence2, LEASE_MS), 'ok');
      assert.equal(await store.finish(fence2, complete()), 'ok');
      assert.equal((await begin(store, input(key))).outcome, 'replay');
    });

    withStore('a reclaimed record whose new owner vanished before sending is still unknown, not free', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      await store.finish(fence, { kind: 'unknown', status: null, requestId: null, reason: 'timeout' });
      const reclaim = await begin(store, input(key, { reclaimUnknown: true }));
      assert.equal(reclaim.outcome, 'acquired');
      assert.equal(reclaim.record.phase, 'claimed');
      await sleep(PAST_LEASE_MS);
      const next = await begin(store, input(key));
      assert.equal(next.outcome, 'unknown');
      assert.equal(next.record.epoch, 2);
      assert.equal((await store.deadLetters(10)).length, 1);
    });

    withStore('an expired unsent claim is taken over (epoch+1); the old owner is then stale everywhere', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const old = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await sleep(PAST_LEASE_MS);
      const takeover = await begin(store, input(key, { upstreamKey: 'ignored' }));
      assert.equal(takeover.outcome, 'acquired');
      assert.equal(takeover.record.epoch, 2);
      assert.equal(takeover.record.phase, 'claimed');
      assert.equal(takeover.record.upstreamKey, 'upstream-key-1');
      assert.equal(await store.markSent(old, LEASE_MS), 'stale');
      assert.equal(await store.renew(old, LEASE_MS), 'stale');
      assert.equal(await store.finish(old, complete()), 'stale');
      assert.equal(await store.finish(old, { kind: 'release' }), 'stale');
      assert.equal((await store.get(key))?.owner, takeover.record.owner);
    });

    withStore('markSent after the lease lapsed is refused', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      await sleep(PAST_LEASE_MS);
      assert.equal(await store.markSent({ key, owner: record.owner, epoch: record.epoch, leash: record.leash }, LEASE_MS), 'stale');
    });

    withStore('a lease that lapses after markSent → begin answers unknown, and the record is a dead letter', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      await store.markSent({ key, owner: record.owner, epoch: record.epoch, leash: record.leash }, LEASE_MS);
      await sleep(PAST_LEASE_MS);
      const next = await begin(store, input(key));
      assert.equal(next.outcome, 'unknown');
      assert.equal(next.record.state, 'outcome_unknown');
      assert.equal(next.record.reason, 'lease_expired_after_send');
      assert.equal(next.record.epoch, 1);
      const letters = await store.deadLetters(10);
      assert.equal(letters.length, 1);
      assert.deepEqual(letters[0]!.key, key);
    });

    withStore('a late finish by the owner (same epoch) settles its outcome_unknown record and leaves the dead letters', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      await sleep(PAST_LEASE_MS);
      assert.equal((await begin(store, input(key))).outcome, 'unknown');
      assert.equal(await store.finish(fence, complete()), 'ok');
      assert.deepEqual(await store.deadLetters(10), []);
      const replay = await begin(store, input(key));
      assert.equal(replay.outcome, 'replay');
      assert.deepEqual(replay.record.response, response);
    });

    withStore('resolve not_executed with the right epoch deletes; a wrong epoch is stale', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      await store.finish(fence, { kind: 'unknown', status: null, requestId: null, reason: 'reset' });
      assert.equal(await store.resolve(key, { epoch: 2, leash: NO_LEASH }, { kind: 'not_executed' }), 'stale');
      assert.equal((await store.get(key))?.state, 'outcome_unknown');
      assert.equal(await store.resolve(key, { epoch: 1, leash: NO_LEASH }, { kind: 'not_executed' }), 'ok');
      assert.equal(await store.get(key), null);
      assert.deepEqual(await store.deadLetters(10), []);
      assert.equal((await begin(store, input(key))).outcome, 'acquired');
    });

    withStore('resolve is refused for a record that is not unknown', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      assert.equal(await store.resolve(key, { epoch: record.epoch, leash: NO_LEASH }, { kind: 'not_executed' }), 'stale');
      assert.equal(await store.resolve(newKey(), { epoch: 1, leash: NO_LEASH }, { kind: 'not_executed' }), 'stale');
    });

    withStore('findByKeyHash finds a key hash in every scope and upstream, and nothing else', async (store) => {
      const a = newKey();
      const b = { ...a, scope: `${a.scope}-other` };
      const c = { ...a, upstream: `${a.upstream}-2` };
      for (const key of [a, b, c]) await begin(store, input(key));
      await begin(store, input(newKey()));
      const found = await store.findByKeyHash(a.keyHash, 10);
      assert.deepEqual(
        found.map((f) => `${f.key.scope}|${f.key.upstream}`).sort(),
        [a, b, c].map((k) => `${k.scope}|${k.upstream}`).sort(),
      );
      assert.ok(found.every((f) => f.key.keyHash === a.keyHash && f.record.state === 'in_flight'));
      assert.deepEqual(await store.findByKeyHash('0'.repeat(64), 10), []);
    });

    withStore('resolve executed without a response → it ran, its answer unknown: replay has no response', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      await store.finish(fence, { kind: 'unknown', status: null, requestId: null, reason: 'timeout' });
      assert.equal(
        await store.resolve(
          key,
          { epoch: 1, leash: NO_LEASH },
          { kind: 'executed', status: 201, response: null, ttlSec: 60, tombstoneSec: 60 },
        ),
        'ok',
      );
      const replay = await begin(store, input(key));
      assert.equal(replay.outcome, 'replay');
      assert.equal(replay.record.response, null);
      assert.equal(replay.record.status, 201);
      // Told apart from an answer too large to store: the replay says an operator settled it.
      assert.equal(replay.record.reason, RESOLVED_WITHOUT_ANSWER);
    });

    withStore('resolve executed → the given response is replayed', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      await store.finish(fence, { kind: 'unknown', status: 504, requestId: 'req_t', reason: 'timeout' });
      const given: StoredResponse = {
        status: 200,
        headers: { 'content-type': 'text/plain' },
        body: Buffer.from('settled by hand'),
      };
      assert.equal(
        await store.resolve(
          key,
          { epoch: 1, leash: NO_LEASH },
          { kind: 'executed', status: 200, response: given, ttlSec: 60, tombstoneSec: 60 },
        ),
        'ok',
      );
      assert.deepEqual(await store.deadLetters(10), []);
      const replay = await begin(store, input(key));
      assert.equal(replay.outcome, 'replay');
      assert.deepEqual(replay.record.response, given);
      assert.equal(replay.record.status, 200);
      assert.equal(replay.record.requestId, 'req_t');
      assert.equal(await store.finish(fence, complete()), 'stale');
    });

    withStore('resolve applies to a sent record whose lease lapsed before anyone looked', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      await store.markSent({ key, owner: record.owner, epoch: record.epoch, leash: record.leash }, LEASE_MS);
      await sleep(PAST_LEASE_MS);
      assert.equal(await store.resolve(key, { epoch: 1, leash: NO_LEASH }, { kind: 'not_executed' }), 'ok');
      assert.equal(await store.get(key), null);
    });

    withStore(
      'the response TTL passes → expired (tombstone); the record expires after the tombstone → a new begin acquires',
      async (store) => {
        const key = newKey();
        const { record } = await begin(store, input(key));
        const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
        await store.markSent(fence, LEASE_MS);
        await store.finish(fence, complete({ ttlSec: 0.2, tombstoneSec: 0.3 }));
        assert.equal((await begin(store, input(key))).outcome, 'replay');
        await sleep(260);
        const tomb = await begin(store, input(key));
        assert.equal(tomb.outcome, 'expired');
        assert.equal(tomb.record.state, 'completed');
        assert.equal((await begin(store, input(key, { fingerprint: 'fp-2' }))).outcome, 'mismatch');
        await sleep(320);
        assert.equal(await store.get(key), null);
        const fresh = await begin(store, input(key));
        assert.equal(fresh.outcome, 'acquired');
        assert.equal(fresh.record.epoch, 1);
      },
    );

    withStore('renew extends the lease: another owner is still refused past the first lease', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await sleep(50);
      assert.equal(await store.renew(fence, 500), 'ok');
      await sleep(PAST_LEASE_MS);
      assert.equal((await begin(store, input(key))).outcome, 'in_use');
      // Renew never shortens a lease.
      assert.equal(await store.renew(fence, 1), 'ok');
      assert.equal((await begin(store, input(key))).outcome, 'in_use');
      assert.equal(await store.markSent(fence, LEASE_MS), 'ok');
    });

    withStore('in-flight and unknown records never expire', async (store) => {
      const key = newKey();
      const { record } = await begin(store, input(key));
      const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
      await store.markSent(fence, LEASE_MS);
      await store.finish(fence, { kind: 'unknown', status: null, requestId: null, reason: 'reset' });
      await sleep(PAST_LEASE_MS);
      assert.equal((await store.get(key))?.state, 'outcome_unknown');
    });

    withStore('dead letters: oldest first, across scopes, bounded by the limit', async (store) => {
      const keys = [newKey('live:a'), newKey('live:b'), newKey('live:a')];
      for (const key of keys) {
        const { record } = await begin(store, input(key));
        const fence = { key, owner: record.owner, epoch: record.epoch, leash: record.leash };
        await store.markSent(fence, LEASE_MS);
        await store.finish(fence, { kind: 'unknown', status: null, requestId: null, reason: 'reset' });
        await sleep(5);
      }
      const all = await store.deadLetters(10);
      assert.deepEqual(
        all.map((d) => d.key),
        keys,
      );
      const two = await store.deadLetters(2);
      assert.deepEqual(
        two.map((d) => d.key),
        keys.slice(0, 2),
      );
    });

    withStore('50 concurrent begins by distinct owners on one key: exactly one acquires', async (store) => {
      const key = newKey();
      const results = await Promise.all(Array.from({ length: 50 }, () => begin(store, input(key, { leaseMs: 5000 }))));
      const acquired = results.filter((r) => r.outcome === 'acquired');
      assert.equal(acquired.length, 1);
      assert.equal(results.filter((r) => r.outcome === 'in_use').length, 49);
      assert.equal((await store.get(key))?.owner, acquired[0]!.record.owner);
    });

    withStore(
      'a derived key points at its latest deliberate operation: set by the begin that creates it, replaced, forgotten after its window',
      async (store) => {
        const derived = newKey();
        const deliberate = (n: number): BeginInput =>
          input(newKey(), { pointer: { from: derived.keyHash, operationKey: `wgd_abc.${n}`, ttlMs: 200 } });
        assert.equal(await store.latestOperation(derived), null);
        await begin(store, deliberate(1));
        assert.equal(await store.latestOperation(derived), 'wgd_abc.1');
        await begin(store, deliberate(2));
        assert.equal(await store.latestOperation(derived), 'wgd_abc.2');
        assert.equal(await store.latestOperation(newKey()), null, 'per derived key');
        await sleep(260);
        assert.equal(await store.latestOperation(derived), null);
      },
    );

    withStore('a begin that creates nothing moves no pointer', async (store) => {
      const derived = newKey();
      const existing = newKey();
      await begin(store, input(existing));
      // The record exists: this begin joins it (in use) and creates nothing.
      const joined = await begin(store, input(existing, { pointer: { from: derived.keyHash, operationKey: 'wgd_x.1', ttlMs: 5000 } }));
      assert.equal(joined.outcome, 'in_use');
      assert.equal(await store.latestOperation(derived), null);
    });
  });
}
