// The stored answer in Redis is its raw bytes — no base64, no JSON around the body — and an answer
// stored by the previous version (the whole answer as JSON, the body base64) still replays after an
// upgrade. On a real redis-server; each replay from a store with no replay cache, so from Redis.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createRedisStore } from '../../src/store/index.js';
import { recordKeys } from '../../src/store/redis/keys.js';
import type { RecordKey, Store } from '../../src/store/store.js';
import { input } from '../helpers/store-contract.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer;
let client: Redis;
const PREFIX = 'answer:';
const body = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from('\n{"id":"pay_1"}\n')]);

before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});

after(async () => {
  client.disconnect();
  await redis.stop();
});

/** A store with no replay cache (every replay asks Redis), closed after `use`. */
async function withStore<T>(use: (store: Store) => Promise<T>): Promise<T> {
  const store = createRedisStore(redisStoreConfig(redis.url, { keyPrefix: PREFIX, initOnEmpty: true, replayCacheBytes: 0 }));
  try {
    assert.ok(await store.whenReady(5000));
    return await use(store);
  } finally {
    await store.close();
  }
}

async function completed(store: Store): Promise<RecordKey> {
  const key = { scope: 'agent:a', upstream: 'pay', keyHash: randomUUID().replaceAll('-', '') };
  const begun = await store.begin(input(key));
  assert.equal(begun.outcome, 'acquired');
  const fence = { key, owner: begun.record.owner, epoch: 1, leash: begun.record.leash };
  assert.equal(await store.markSent(fence, 5000), 'ok');
  const response = { status: 201, headers: { 'content-type': 'application/octet-stream' }, body };
  assert.equal(
    await store.finish(fence, { kind: 'complete', status: 201, requestId: 'req_1', response, ttlSec: 60, tombstoneSec: 60 }),
    'ok',
  );
  return key;
}

/** The replayed body, as a fresh store reads it from Redis. */
function replayed(key: RecordKey): Promise<Buffer> {
  return withStore(async (store) => {
    const again = await store.begin(input(key));
    assert.equal(again.outcome, 'replay');
    if (again.outcome !== 'replay') throw new Error('unreachable');
    assert.equal(again.record.response?.status, 201);
    return again.record.response!.body;
  });
}

test('the answer is kept as its raw bytes after one line of status and headers, and replays exact', () =>
  withStore(async (store) => {
    const key = await completed(store);
    const stored = await client.getBuffer(recordKeys(PREFIX, key, false).resp);
    assert.ok(stored !== null);
    const newline = stored.indexOf(0x0a);
    assert.deepEqual(JSON.parse(stored.subarray(0, newline).toString()), {
      status: 201,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.ok(stored.subarray(newline + 1).equals(body));
    assert.ok((await replayed(key)).equals(body));
    assert.ok((await store.get(key))!.response!.body.equals(body), 'get reads the same bytes');
  }));

test('an answer the previous version stored (JSON, body base64) replays exact after an upgrade', () =>
  withStore(async (store) => {
    const key = await completed(store);
    const resp = recordKeys(PREFIX, key, false).resp;
    const ttl = await client.pttl(resp);
    const legacy = JSON.stringify({ status: 201, headers: { 'content-type': 'application/octet-stream' }, body: body.toString('base64') });
    await client.set(resp, legacy, 'PX', ttl);
    assert.ok((await replayed(key)).equals(body));
  }));
