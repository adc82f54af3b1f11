// A claim given up before a byte left is released, with its budget hold. A write whose markSent fails
// (Redis timed out between begin and markSent) is refused 503 store_unavailable and never sent; kept,
// its in-flight record would never expire, so a key never retried would hold its budget for good, and
// the agent's own retry would meet its live claim (409). So is one whose markSent finds the claim
// lapsed (409). The store is a real Redis store; only its markSent is made to fail, once, the way a
// timed-out command does or a lapsed lease would answer.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createRedisStore, initStore } from '../../src/store/index.js';
import { StoreUnavailableError, type Store } from '../../src/store/store.js';
import { expectProblem, post } from '../helpers/problem.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const TOKEN = 'admin-token-0123456789';
let redis: RedisServer;
let up: CountingUpstream;
let wg: RunningWriteguard;
/** How the next markSent fails: as a timed-out command, or as a claim whose lease lapsed. */
let markSentFault: 'throw' | 'stale' | null = null;

before(async () => {
  redis = await startRedis();
  up = await startUpstream();
  const cfg = redisStoreConfig(redis.url, { keyPrefix: 'giveback:' });
  await initStore(cfg);
  wg = await startWriteguard(
    {
      admin: { token: TOKEN },
      store: { kind: 'redis', url: cfg.url, keyPrefix: cfg.keyPrefix },
      budgets: [{ name: 'daily', match: 'POST /v1/payments', amount: 'body:amount', limit: 100, period: 'day' }],
      upstreams: [{ name: 'pay', target: up.url, timeoutMs: 5000, idempotency: { leaseMs: 30_000 } }],
    },
    {
      store: (storeConfig, log) => {
        const real = createRedisStore(storeConfig, log);
        return new Proxy(real, {
          get(target, prop) {
            if (prop === 'markSent' && markSentFault !== null) {
              const fault = markSentFault;
              markSentFault = null;
              return () =>
                fault === 'stale'
                  ? Promise.resolve('stale')
                  : Promise.reject(new StoreUnavailableError('redis store markSent failed: timed out', { mayHaveApplied: false }));
            }
            const value: unknown = Reflect.get(target, prop, target);
            return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
          },
        }) as Store;
      },
    },
  );
  assert.equal(await wg.server.store.whenReady(5000), true);
});
after(async () => {
  await wg?.close();
  await up?.close();
  await redis?.stop();
});

async function daily(): Promise<{ spent: number; held: number }> {
  const res = await fetch(`${wg.adminUrl}/budgets?agent=default`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const row = ((await res.json()) as { budgets: { budget: string; spent: number; held: number }[] }).budgets.find(
    (r) => r.budget === 'daily',
  )!;
  return { spent: row.spent, held: row.held };
}

test('markSent fails: 503, nothing sent, the claim and its hold released; the retry runs at once', async () => {
  markSentFault = 'throw';
  const first = await post(`${wg.url}/v1/payments`, '{"amount":60}', { 'idempotency-key': 'gb-1' });
  await expectProblem(first, 503, 'store_unavailable');
  assert.equal(markSentFault, null, 'the fault was used');
  assert.equal(up.count('/v1/payments'), 0, 'nothing was sent');
  assert.deepEqual(await daily(), { spent: 0, held: 0 }, 'the hold went back with the claim');

  // Within the 30 s lease: a claim still held would answer 409 idempotency_key_in_use.
  const retry = await post(`${wg.url}/v1/payments`, '{"amount":60}', { 'idempotency-key': 'gb-1' });
  assert.equal(retry.status, 201, await retry.text());
  assert.equal(up.count('/v1/payments'), 1);
  assert.deepEqual(await daily(), { spent: 60, held: 0 });
});

test('markSent finds the claim lapsed: 409, nothing sent, the claim and its hold released; the retry runs at once', async () => {
  const before = await daily();
  markSentFault = 'stale';
  const first = await post(`${wg.url}/v1/payments`, '{"amount":30}', { 'idempotency-key': 'gb-2' });
  await expectProblem(first, 409, 'idempotency_key_in_use');
  assert.equal(markSentFault, null, 'the fault was used');
  assert.equal(up.count('/v1/payments'), 1, 'nothing more was sent');
  assert.deepEqual(await daily(), before, 'the hold went back with the claim');

  const retry = await post(`${wg.url}/v1/payments`, '{"amount":30}', { 'idempotency-key': 'gb-2' });
  assert.equal(retry.status, 201, await retry.text());
  assert.equal(up.count('/v1/payments'), 2);
  assert.deepEqual(await daily(), { spent: before.spent + 30, held: 0 });
});
