// The in-process cache of completed records: what it answers, when it stops, what it keeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayCache } from '../../../src/store/replay-cache.js';
import type { FinishOutcome, IdemRecord, RecordKey, StoredResponse } from '../../../src/store/store.js';
import { input } from '../../helpers/store-contract.js';

const TTL_SEC = 60;
const response = (bytes: number): StoredResponse => ({
  status: 201,
  headers: { 'content-type': 'application/json' },
  body: Buffer.alloc(bytes, 'x'),
});
const complete = (bytes = 10): FinishOutcome => ({
  kind: 'complete',
  status: 201,
  requestId: 'req_1',
  response: response(bytes),
  ttlSec: TTL_SEC,
  tombstoneSec: 60,
});
const key = (n: number): RecordKey => ({ scope: 'live:agent', upstream: 'pay', keyHash: `hash-${n}` });

/** What an acquired begin hands back for this key (only the fields the cache reads matter). */
function acquiredRecord(k: RecordKey, owner: string, fingerprint = 'fp-1'): IdemRecord {
  return {
    ...({} as IdemRecord),
    state: 'in_flight',
    phase: 'sent',
    fingerprint,
    upstreamKey: `up-${k.keyHash}`,
    owner,
    epoch: 1,
    attempts: 1,
    approval: null,
  };
}

function written(cache: ReplayCache, k: RecordKey, at: number, outcome: FinishOutcome = complete(), result: 'ok' | 'stale' = 'ok'): void {
  const owner = `owner-${k.keyHash}-${at}`;
  cache.acquired(acquiredRecord(k, owner));
  cache.finished({ key: k, owner, epoch: 1, leash: { intent: null, holds: [] } } as never, outcome, at, result);
}

test('a completed write is replayed from the cache: same key and fingerprint only, never for a fresh operation', () => {
  const cache = new ReplayCache(1 << 20, () => 1_000);
  written(cache, key(1), 1_000);
  const hit = cache.replay(input(key(1)));
  assert.equal(hit?.outcome, 'replay');
  assert.equal(hit.record.state, 'completed');
  assert.equal(hit.record.status, 201);
  assert.equal(hit.record.requestId, 'req_1');
  assert.deepEqual(hit.record.response, response(10));
  assert.equal(cache.replay(input(key(1), { fingerprint: 'fp-other' })), null, 'a mismatch is the store to answer');
  assert.equal(cache.replay(input(key(1), { mode: 'fresh' })), null, 'a possible duplicate is the store to answer');
  assert.equal(cache.replay(input(key(2))), null);
});

test('an entry ends with its replay window, counted from before the finish was sent', () => {
  let now = 5_000;
  const cache = new ReplayCache(1 << 20, () => now);
  written(cache, key(1), 5_000);
  now = 5_000 + TTL_SEC * 1000 - 1;
  assert.equal(cache.replay(input(key(1)))?.outcome, 'replay');
  now = 5_000 + TTL_SEC * 1000;
  assert.equal(cache.replay(input(key(1))), null, 'at the end of the window the store answers (expired)');
  assert.deepEqual(cache.size(), { entries: 0, bytes: 0, pending: 0 });
});

test('nothing is cached from a finish that was refused, released or left unknown; none stays pending', () => {
  const cache = new ReplayCache(1 << 20, () => 0);
  written(cache, key(1), 0, complete(), 'stale');
  written(cache, key(2), 0, { kind: 'release' });
  written(cache, key(3), 0, { kind: 'unknown', status: null, requestId: null, reason: 'timeout' });
  for (const n of [1, 2, 3]) assert.equal(cache.replay(input(key(n))), null);
  assert.deepEqual(cache.size(), { entries: 0, bytes: 0, pending: 0 });
});

test('bounded by bytes: the least recently replayed goes first; an answer larger than the bound is not kept', () => {
  const entryBytes = 1_000 + 512;
  const cache = new ReplayCache(entryBytes * 2, () => 0);
  written(cache, key(1), 0, complete(1_000));
  written(cache, key(2), 0, complete(1_000));
  assert.equal(cache.replay(input(key(1)))?.outcome, 'replay'); // key 1 is now the most recent
  written(cache, key(3), 0, complete(1_000));
  assert.equal(cache.replay(input(key(2))), null, 'key 2 was the least recently used');
  assert.equal(cache.replay(input(key(1)))?.outcome, 'replay');
  assert.equal(cache.replay(input(key(3)))?.outcome, 'replay');
  assert.deepEqual(cache.size(), { entries: 2, bytes: entryBytes * 2, pending: 0 });
  written(cache, key(4), 0, complete(entryBytes * 2));
  assert.equal(cache.replay(input(key(4))), null);
  assert.equal(cache.size().entries, 2, 'the oversized answer evicted nothing');
  written(cache, key(3), 0, complete(entryBytes * 2));
  assert.equal(cache.replay(input(key(3))), null, 'an oversized answer for a cached address takes the earlier entry with it');
  assert.deepEqual(cache.size(), { entries: 1, bytes: entryBytes, pending: 0 });
});
