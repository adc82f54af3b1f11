// Replays from the in-process cache of completed records (Redis store): counted at Redis, a hot replay
// runs no script; another instance still replays from Redis; the cache stops with the replay window;
// and a store that is not ready refuses even a cached key.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { expectProblem } from '../helpers/problem.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { until } from '../helpers/wait.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let redis: RedisServer;
let up: CountingUpstream;
before(async () => {
  redis = await startRedis();
  up = await startUpstream();
});
after(async () => {
  await up.close();
  await redis.stop();
});

async function guard(ttlSec = 3600, replayCacheBytes?: number): Promise<RunningWriteguard> {
  const wg = await startWriteguard({
    store: { kind: 'redis', url: redis.url, initOnEmpty: true, ...(replayCacheBytes === undefined ? {} : { replayCacheBytes }) },
    upstreams: [{ name: 'pay', target: up.url, idempotency: { ttlSec, tombstoneSec: 3600 } }],
  });
  assert.equal(await wg.server.store.whenReady(5000), true);
  return wg;
}

/** Scripts Redis has run so far (commandstats: EVALSHA and EVAL calls). */
async function scriptsRun(): Promise<number> {
  const client = new Redis(redis.url);
  try {
    const stats = await client.info('commandstats');
    return [...stats.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  } finally {
    client.disconnect();
  }
}

const pay = (wg: RunningWriteguard, key: string) =>
  fetch(`${wg.url}/v1/payments`, {
    method: 'POST',
    body: '{"amount":7}',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
  });

test('a hot replay runs no script in Redis; another instance replays the same key from Redis', async (t) => {
  const a = await guard();
  const b = await guard();
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const first = await pay(a, 'cache-1');
  assert.equal(first.status, 201);
  const body = await first.text();
  const before = await scriptsRun();
  for (let i = 0; i < 5; i++) {
    const again = await pay(a, 'cache-1');
    assert.equal(again.status, 201);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(await again.text(), body);
  }
  assert.equal((await scriptsRun()) - before, 0, 'five replays on the instance that wrote it: no script');
  const other = await pay(b, 'cache-1');
  assert.equal(other.headers.get('idempotent-replayed'), 'true');
  assert.equal(await other.text(), body);
  assert.equal((await scriptsRun()) - before, 1, 'the other instance asked Redis once');
  assert.equal(up.count('/v1/payments'), 1);
  assert.equal(await pay(a, 'cache-1').then((r) => r.headers.get('idempotent-replayed')), 'true');
  const mismatch = await fetch(`${a.url}/v1/payments`, { method: 'POST', body: '{"amount":8}', headers: { 'idempotency-key': 'cache-1' } });
  await expectProblem(mismatch, 422, 'idempotency_key_reuse_mismatch');
});

test('the cache stops with the replay window: a retry after ttlSec is answered by the store (expired), never re-run', async (t) => {
  const wg = await guard(1);
  t.after(() => wg.close());
  const executed = up.count('/v1/payments');
  assert.equal((await pay(wg, 'cache-ttl')).status, 201);
  assert.equal((await pay(wg, 'cache-ttl')).headers.get('idempotent-replayed'), 'true');
  await new Promise((r) => setTimeout(r, 1_100));
  await expectProblem(await pay(wg, 'cache-ttl'), 409, 'idempotency_key_expired');
  assert.equal(up.count('/v1/payments') - executed, 1);
});

test('replayCacheBytes 0: every replay asks Redis', async (t) => {
  const wg = await guard(3600, 0);
  t.after(() => wg.close());
  assert.equal((await pay(wg, 'cache-off')).status, 201);
  const before = await scriptsRun();
  assert.equal((await pay(wg, 'cache-off')).headers.get('idempotent-replayed'), 'true');
  assert.equal((await scriptsRun()) - before, 1);
});

test('a store that is not ready refuses a cached key too (writes fail closed)', async (t) => {
  const wg = await guard();
  t.after(() => wg.close());
  assert.equal((await pay(wg, 'cache-down')).status, 201);
  redis.kill('SIGSTOP');
  try {
    assert.ok(await until(() => !wg.server.store.ready(), { timeoutMs: 10_000, intervalMs: 50 }), 'the store is seen not ready');
    await expectProblem(await pay(wg, 'cache-down'), 503, 'store_unavailable');
  } finally {
    redis.kill('SIGCONT');
  }
  assert.ok(await until(() => wg.server.store.ready(), { timeoutMs: 10_000, intervalMs: 50 }));
  assert.equal((await pay(wg, 'cache-down')).headers.get('idempotent-replayed'), 'true');
});

test('FLUSHALL: the instance that wrote a key still replays it (it ran; never again), and refuses everything once it sees the loss', async (t) => {
  const wg = await guard();
  t.after(() => wg.close());
  const executed = up.count('/v1/payments');
  assert.equal((await pay(wg, 'cache-flushed')).status, 201);
  const client = new Redis(redis.url);
  await client.flushall();
  client.disconnect();
  const retry = await pay(wg, 'cache-flushed');
  assert.equal(retry.status, 201);
  assert.equal(retry.headers.get('idempotent-replayed'), 'true', 'replayed from memory: the store forgot it, this instance did not');
  // The next claim meets the emptied store: refused, and from then on the store is not ready.
  await expectProblem(await pay(wg, 'cache-flushed-new'), 503, 'store_unavailable');
  await expectProblem(await pay(wg, 'cache-flushed'), 503, 'store_unavailable');
  assert.equal(up.count('/v1/payments') - executed, 1);
});
