// A Redis that can evict keys is refused (DESIGN §3.12, "Hardened"). Under memory pressure a
// `maxmemory-policy` other than noeviction drops keys — a completed record among them — and the
// next retry of that write would run again. writeguard reads `INFO memory` (maxmemory,
// maxmemory_policy) at start-up and on every readiness check; when keys can be evicted, writes
// fail closed (503 store_unavailable, upstream untouched), `GET /readyz` answers 503 with a detail
// naming maxmemory-policy, and /metrics shows `writeguard_store_ready 0`. `store.allowEviction: true`
// (development only) accepts such a store with a warning — and the last test shows what that costs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { ConfigInput } from '../../src/config/schema.js';
import { initStore } from '../../src/store/index.js';
import { expectProblem, post } from '../helpers/problem.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';
import { metric, rawRedis, readyz } from '../helpers/store-safety.js';
import { until } from '../helpers/wait.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';

const WARN = 'warn';
const EVICTING = ['--maxmemory', '4mb', '--maxmemory-policy', 'volatile-lru'];

let up: CountingUpstream;
const servers: RedisServer[] = [];
const raws: Redis[] = [];

before(async () => {
  up = await startUpstream((req, res) => {
    res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}` });
    res.end(JSON.stringify({ id: `pay_${up.received.length}`, url: req.url }));
  });
});

after(async () => {
  await up.close();
  for (const r of raws) r.disconnect();
  for (const s of servers) await s.stop();
});

async function redis(args: string[] = []): Promise<{ s: RedisServer; raw: Redis }> {
  const s = await startRedis({ args });
  servers.push(s);
  return { s, raw: rawRedis(s.url, raws) };
}

/**
 * `writeguard store init`, run while the Redis cannot evict (maxmemory 0), its limit put back
 * after: the tests then do not depend on whether `store init` itself accepts an evicting store.
 */
async function initialise(s: RedisServer, raw: Redis, keyPrefix: string): Promise<void> {
  const [, limit] = (await raw.config('GET', 'maxmemory')) as [string, string];
  await raw.config('SET', 'maxmemory', '0');
  await initStore(redisStoreConfig(s.url, { commandTimeoutMs: 300, keyPrefix }));
  await raw.config('SET', 'maxmemory', limit);
}

async function guard(s: RedisServer, keyPrefix: string, over: Record<string, unknown> = {}): Promise<RunningWriteguard> {
  // Cast: `allowEviction` is a new setting of the store section.
  const store = { kind: 'redis', url: s.url, keyPrefix, commandTimeoutMs: 300, ...over } as ConfigInput['store'];
  return startWriteguard({ store, upstreams: [{ name: 'pay', target: up.url, timeoutMs: 2000, idempotency: { leaseMs: 2500 } }] });
}

/** readyz is 503 store_unavailable with a detail naming maxmemory-policy (polled: checks run about every second). */
async function refusedForEviction(wg: RunningWriteguard, withinMs: number): Promise<void> {
  let last = await readyz(wg.adminUrl);
  await until(
    async () => {
      last = await readyz(wg.adminUrl);
      return last.status === 503 && /maxmemory-policy/.test(String(last.body.detail));
    },
    { timeoutMs: withinMs },
  );
  assert.equal(last.status, 503, `readyz ${last.status} ${JSON.stringify(last.body)}`);
  assert.equal(last.body.ready, false);
  assert.equal(last.body.reason, 'store_evicting');
  assert.match(String(last.body.detail), /maxmemory-policy/, JSON.stringify(last.body));
}

test('maxmemory 4mb + volatile-lru from the start: writes refused (503 store_unavailable, upstream untouched), readyz and metrics say why', async () => {
  const { s, raw } = await redis(EVICTING);
  await initialise(s, raw, 'ev1:');
  const wg = await guard(s, 'ev1:');
  try {
    assert.equal(await wg.server.store.whenReady(1500), false, 'an evicting store is not accepted');
    await refusedForEviction(wg, 3000);
    const before = up.count();
    for (let i = 0; i < 3; i++) {
      const res = await post(`${wg.url}/v1/payments`, `{"n":${i}}`, { 'idempotency-key': `ev1-${i}` });
      const seen = `${res.status} ${await res.clone().text()}`;
      assert.equal(up.count(), before, `no write may reach the upstream (answered ${seen})`);
      assert.equal(res.headers.get('x-should-retry'), 'true');
      await expectProblem(res, 503, 'store_unavailable');
    }
    assert.equal(await metric(wg.adminUrl, 'writeguard_store_ready'), 0);
    // Still refused after further checks: nothing accepts it later on its own.
    await sleep(1200);
    await refusedForEviction(wg, 0);
    await expectProblem(await post(`${wg.url}/v1/payments`, '{"n":9}', { 'idempotency-key': 'ev1-9' }), 503, 'store_unavailable');
    assert.equal(up.count(), before);
  } finally {
    await wg.close();
  }
});

test('policy switched at run time (CONFIG SET): within seconds readiness turns false, writes are refused and a completed key never runs again', async () => {
  const { s, raw } = await redis(); // noeviction, no limit
  await initialise(s, raw, 'ev2:');
  const wg = await guard(s, 'ev2:'); // the default check interval (about a second)
  try {
    assert.equal(await wg.server.store.whenReady(5000), true, 'a noeviction store is accepted');
    assert.equal((await readyz(wg.adminUrl)).status, 200);
    const first = await post(`${wg.url}/v2/payments`, '{"amount":100}', { 'idempotency-key': 'K' });
    assert.equal(first.status, 201, await first.text());
    assert.equal(up.count('/v2/payments'), 1);

    await raw.config('SET', 'maxmemory-policy', 'volatile-lru');
    await raw.config('SET', 'maxmemory', '4mb');

    await refusedForEviction(wg, 5000);
    const retry = await post(`${wg.url}/v2/payments`, '{"amount":100}', { 'idempotency-key': 'K' });
    const seen = `${retry.status} ${await retry.clone().text()}`;
    assert.equal(up.count('/v2/payments'), 1, `K must not run again (answered ${seen})`);
    await expectProblem(retry, 503, 'store_unavailable');
    await expectProblem(await post(`${wg.url}/v2/payments`, '{"amount":5}', { 'idempotency-key': 'K2' }), 503, 'store_unavailable');
    assert.equal(up.count('/v2/payments'), 1);
    assert.equal(await metric(wg.adminUrl, 'writeguard_store_ready'), 0);

    // Put back to noeviction: nothing was lost (the sentinel is there), so the next checks accept the
    // store again without an operator, and K replays — it still never runs twice.
    await raw.config('SET', 'maxmemory-policy', 'noeviction');
    assert.equal(await wg.server.store.whenReady(5000), true, 'ready again once the policy is noeviction');
    const replay = await post(`${wg.url}/v2/payments`, '{"amount":100}', { 'idempotency-key': 'K' });
    assert.equal(replay.status, 201, await replay.clone().text());
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    await replay.arrayBuffer();
    assert.equal(up.count('/v2/payments'), 1);
    assert.ok(
      await until(async () => (await metric(wg.adminUrl, 'writeguard_store_ready')) === 1, { timeoutMs: 3000 }),
      'writeguard_store_ready 1 again',
    );
  } finally {
    await wg.close();
  }
});

test('a write in its retry wait when the policy turns evicting still finishes: its answer is stored (no dead letter) and replays once the policy is fixed', async () => {
  const { s, raw } = await redis();
  await initialise(s, raw, 'ev4:');
  const wg = await guard(s, 'ev4:');
  // The first attempt is refused (429, nothing ran) with a wait long enough to switch the policy.
  let attempts = 0;
  const path = '/v4/payments';
  up.respond((req, res) => {
    if (req.url === path && ++attempts === 1) {
      res.writeHead(429, { 'retry-after-ms': '1500', 'content-type': 'application/json' });
      return void res.end('{"error":{"code":"rate_limited"}}');
    }
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: `pay_${up.received.length}` }));
  });
  try {
    assert.equal(await wg.server.store.whenReady(5000), true);
    const pending = post(`${wg.url}${path}`, '{"amount":100}', { 'idempotency-key': 'K4' });
    await sleep(200);
    await raw.config('SET', 'maxmemory-policy', 'volatile-lru');
    await raw.config('SET', 'maxmemory', '4mb');
    await refusedForEviction(wg, 3000);
    const res = await pending;
    assert.equal(res.status, 201, await res.clone().text());
    assert.equal(res.headers.get('writeguard-stored'), null, 'the answer was stored');
    await res.arrayBuffer();
    assert.equal(attempts, 2);
    await raw.config('SET', 'maxmemory-policy', 'noeviction');
    assert.equal(await wg.server.store.whenReady(5000), true);
    const replay = await post(`${wg.url}${path}`, '{"amount":100}', { 'idempotency-key': 'K4' });
    assert.equal(replay.status, 201, await replay.clone().text());
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    await replay.arrayBuffer();
    assert.equal(attempts, 2, 'the write ran once');
  } finally {
    up.respond((req, res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}` });
      res.end(JSON.stringify({ id: `pay_${up.received.length}`, url: req.url }));
    });
    await wg.close();
  }
});

// The documented hazard, shown rather than hidden: `allowEviction: true` accepts an evicting store,
// and once memory pressure evicts a completed record (it carries a TTL, so volatile-lru may take it),
// the retry of that write RUNS AGAIN. This test asserts that second execution on purpose: it is why
// allowEviction is a development override and why the default refuses such a store. Redis is filled
// directly (1 KB values with a TTL) rather than through ~3,000 writes: faster, and it stops as soon
// as the record is gone, which is checked on the record's own key.
test('allowEviction: true accepts an evicting store with a warning — and an evicted completed record lets its write run again', async () => {
  const prefix = 'ev3:';
  const { s, raw } = await redis(EVICTING);
  await initialise(s, raw, prefix);
  // Without in-process replays: the hazard is the store's (the instance that wrote K would replay it from memory).
  const wg = await guard(s, prefix, { allowEviction: true, replayCacheBytes: 0 });
  try {
    assert.equal(
      await wg.server.store.whenReady(5000),
      true,
      `accepted with allowEviction: ${JSON.stringify((await readyz(wg.adminUrl)).body)}`,
    );
    assert.equal((await readyz(wg.adminUrl)).status, 200);
    assert.ok(
      await until(() => wg.logs.lines.some((l) => l.level === WARN && /evict/i.test(JSON.stringify(l))), { timeoutMs: 3000 }),
      'a warn line says the store can evict keys',
    );

    const first = await post(`${wg.url}/v3/payments`, '{"amount":100}', { 'idempotency-key': 'K' });
    assert.equal(first.status, 201, await first.text());
    assert.equal(up.count('/v3/payments'), 1);
    const records = (await raw.keys(`${prefix}{live:default}:pay:*`)).filter((k) => !k.endsWith(':resp'));
    assert.equal(records.length, 1, JSON.stringify(records));
    const recordKey = records[0]!;
    assert.ok((await raw.pttl(recordKey)) > 0, 'a completed record carries a TTL: volatile-lru may evict it');

    // Memory pressure: up to 40 MB of 1 KB values (with a TTL) into a 4 MB Redis, until the record is evicted.
    const value = 'x'.repeat(1024);
    let evicted = false;
    for (let round = 0; round < 80 && !evicted; round++) {
      const pipeline = raw.pipeline();
      for (let i = 0; i < 500; i++) pipeline.set(`filler:${round}:${i}`, value, 'PX', 3_600_000);
      await pipeline.exec();
      evicted = (await raw.exists(recordKey)) === 0;
    }
    assert.ok(evicted, 'the completed record was evicted under memory pressure');
    assert.ok(Number(/evicted_keys:(\d+)/.exec(await raw.info('stats'))?.[1]) > 0);

    // The hazard: the agent's retry of K is a new write now, and the upstream executes it a second time.
    const retry = await post(`${wg.url}/v3/payments`, '{"amount":100}', { 'idempotency-key': 'K' });
    assert.equal(retry.status, 201, await retry.clone().text());
    assert.equal(retry.headers.get('idempotent-replayed'), null);
    await retry.arrayBuffer();
    assert.equal(up.count('/v3/payments'), 2, 'with allowEviction the completed write ran twice: the documented hazard');
  } finally {
    await wg.close();
  }
});
