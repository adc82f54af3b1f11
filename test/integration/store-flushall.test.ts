// Store loss without a disconnect (DESIGN §3.12, "Hardened"): FLUSHALL empties Redis while every
// connection stays up. The claiming step itself checks the sentinel, so the very next write is
// refused — there is no window until a periodic check notices. The periodic check is slowed to 60 s
// here so that only the claiming step can be what refuses.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { createRedisStore, initStore, type StoreConfig } from '../../src/store/index.js';
import { expectProblem, post } from '../helpers/problem.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';
import { rawRedis, readyz } from '../helpers/store-safety.js';
import { until } from '../helpers/wait.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';

const SLOW_CHECK_MS = 60_000;

let up: CountingUpstream;
let redis: RedisServer;
const raws: Redis[] = [];
/** Answers for /v1/held, released by the test. */
const held: (() => void)[] = [];

before(async () => {
  redis = await startRedis({ appendonly: false });
  up = await startUpstream((req, res) => {
    const answer = (): void => {
      res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}` });
      res.end(JSON.stringify({ id: `pay_${up.received.length}`, url: req.url }));
    };
    if (req.url === '/v1/held') held.push(answer);
    else answer();
  });
});

after(async () => {
  for (const release of held.splice(0)) release();
  await up.close();
  for (const r of raws) r.disconnect();
  await redis.stop();
});

let prefixes = 0;

/** A fresh key prefix (one store per test on the same Redis), initialised explicitly. */
async function initialisedStoreConfig(): Promise<StoreConfig> {
  const cfg = redisStoreConfig(redis.url, { commandTimeoutMs: 300, keyPrefix: `fa${++prefixes}:` });
  await initStore(cfg);
  return cfg;
}

async function guard(cfg: StoreConfig): Promise<RunningWriteguard> {
  const wg = await startWriteguard(
    {
      // The store's own detection of the loss: no in-process replays (replay-cache.test.ts covers those across a loss).
      store: { kind: 'redis', url: cfg.url, keyPrefix: cfg.keyPrefix, commandTimeoutMs: cfg.commandTimeoutMs, replayCacheBytes: 0 },
      upstreams: [{ name: 'pay', target: up.url, timeoutMs: 5000, idempotency: { leaseMs: 6000 } }],
    },
    // The periodic sentinel check is slowed so it cannot be what notices the loss.
    { store: (storeConfig, log) => createRedisStore(storeConfig, log, { checkIntervalMs: SLOW_CHECK_MS }) },
  );
  assert.equal(await wg.server.store.whenReady(5000), true, `store not ready: ${JSON.stringify((await readyz(wg.adminUrl)).body)}`);
  return wg;
}

/** Posts to /v1/held; should the write reach the upstream (a failure), releases it so the request settles. */
async function postReleasing(url: string, body: string, key: string): Promise<Response> {
  let settled = false;
  const pending = post(url, body, { 'idempotency-key': key }).finally(() => {
    settled = true;
  });
  await until(() => settled || held.length > 0, { timeoutMs: 5000 });
  for (const release of held.splice(0)) release();
  return pending;
}

test('FLUSHALL, then at once the retry of a completed key: 503 store_unavailable, the write never runs twice', async () => {
  const cfg = await initialisedStoreConfig();
  const wg = await guard(cfg);
  try {
    const first = await post(`${wg.url}/v1/payments`, '{"amount":100}', { 'idempotency-key': 'flush-k' });
    assert.equal(first.status, 201, await first.text());
    assert.equal(up.count('/v1/payments'), 1);
    const replay = await post(`${wg.url}/v1/payments`, '{"amount":100}', { 'idempotency-key': 'flush-k' });
    assert.equal(replay.headers.get('idempotent-replayed'), 'true', 'a replay before the loss');
    await replay.arrayBuffer();

    await rawRedis(redis.url, raws).flushall();

    // The very next write, well inside the 60 s check interval: refused by the claiming step itself.
    const retry = await post(`${wg.url}/v1/payments`, '{"amount":100}', { 'idempotency-key': 'flush-k' });
    const seen = `${retry.status} ${await retry.clone().text()}`;
    assert.equal(up.count('/v1/payments'), 1, `the completed write must not run again (the retry was answered ${seen})`);
    assert.equal(retry.headers.get('x-should-retry'), 'true');
    await expectProblem(retry, 503, 'store_unavailable');

    // A new key is refused as well: the store as a whole is untrusted until an operator acts.
    await expectProblem(await post(`${wg.url}/v1/payments`, '{"amount":7}', { 'idempotency-key': 'flush-new' }), 503, 'store_unavailable');
    assert.equal(up.count('/v1/payments'), 1);
    // And it stays refused (no silent re-initialisation of the emptied store).
    await expectProblem(await post(`${wg.url}/v1/payments`, '{"amount":100}', { 'idempotency-key': 'flush-k' }), 503, 'store_unavailable');
    assert.equal(up.count('/v1/payments'), 1);

    // Readiness reports it (DESIGN §3.12: sentinel missing → readiness false), without waiting for the 60 s check.
    assert.ok(
      await until(async () => (await readyz(wg.adminUrl)).status === 503, { timeoutMs: 2000 }),
      'readyz turns 503 once the loss is seen',
    );
    const ready = await readyz(wg.adminUrl);
    assert.equal(ready.body.ready, false);
    assert.equal(ready.body.reason, 'store_lost_data', 'readiness tells a lost store from an unreachable one');
    assert.equal(ready.body.store, 'sentinel_missing');
  } finally {
    await wg.close();
  }
});

test('FLUSHALL while a write is upstream: its answer reaches the agent, and no retry of that key runs it again', async () => {
  const cfg = await initialisedStoreConfig();
  const wg = await guard(cfg);
  try {
    const before = up.count('/v1/held');
    const pending = post(`${wg.url}/v1/held`, '{"amount":250}', { 'idempotency-key': 'flush-in-flight' });
    assert.ok(await until(() => held.length > 0, { timeoutMs: 5000 }), 'the write reached the upstream');
    assert.equal(up.count('/v1/held'), before + 1);

    await rawRedis(redis.url, raws).flushall();
    held.shift()!();

    const answer = await pending;
    assert.equal(answer.status, 201, "the upstream's answer is the truth and reaches the agent");
    const stored = answer.headers.get('writeguard-stored');
    await answer.arrayBuffer();

    // The agent's retries (at once, and again after a moment) never execute that write a second time.
    for (let i = 0; i < 3; i++) {
      const retry = await postReleasing(`${wg.url}/v1/held`, '{"amount":250}', 'flush-in-flight');
      const seen = `${retry.status} ${await retry.clone().text()}`;
      assert.equal(up.count('/v1/held'), before + 1, `retry ${i} must not reach the upstream (it was answered ${seen})`);
      await expectProblem(retry, 503, 'store_unavailable');
      if (i === 1) await new Promise((r) => setTimeout(r, 300));
    }
    // Nothing is reported as stored that isn't: the record the write would have finished is gone.
    assert.equal(stored, 'false', 'the answer says its record was not stored');
  } finally {
    await wg.close();
  }
});
