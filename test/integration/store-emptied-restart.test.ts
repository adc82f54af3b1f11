// An emptied store is never adopted silently by the default configuration (DESIGN §3.12, "Hardened"):
// `initOnEmpty` defaults to false, so an empty Redis — brand new, or restarted without persistence —
// must be initialised (`writeguard store init`) or accepted (`writeguard store ack`) by an operator.
// The danger shown here: writeguard A completes a payment, Redis restarts empty, and a NEW
// writeguard B (which never saw the old sentinel, so it cannot notice a change) would otherwise
// create a fresh sentinel and run the completed payment again.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ackStore, initStore, type StoreConfig } from '../../src/store/index.js';
import { expectProblem, post } from '../helpers/problem.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';
import { readyz } from '../helpers/store-safety.js';
import { until } from '../helpers/wait.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';

let up: CountingUpstream;
const servers: RedisServer[] = [];
const guards: RunningWriteguard[] = [];

before(async () => {
  up = await startUpstream((req, res) => {
    res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}` });
    res.end(JSON.stringify({ id: `pay_${up.received.length}`, url: req.url }));
  });
});

after(async () => {
  for (const wg of guards) await wg.close().catch(() => undefined);
  await up.close();
  for (const s of servers) await s.stop();
});

async function redis(): Promise<RedisServer> {
  // No AOF, no RDB (startRedis passes --save ''): a restart comes back empty.
  const s = await startRedis({ appendonly: false });
  servers.push(s);
  return s;
}

/** writeguard with the DEFAULT store settings: initOnEmpty is deliberately not set. */
async function guard(s: RedisServer): Promise<RunningWriteguard> {
  const wg = await startWriteguard({
    store: { kind: 'redis', url: s.url, commandTimeoutMs: 300 },
    upstreams: [{ name: 'pay', target: up.url, timeoutMs: 2000, idempotency: { leaseMs: 2500 } }],
  });
  guards.push(wg);
  return wg;
}

/** The store section the guards above run with (schema defaults), for `store init` / `store ack`. */
function storeConfig(s: RedisServer): StoreConfig {
  return redisStoreConfig(s.url, { commandTimeoutMs: 300 });
}

async function close(wg: RunningWriteguard): Promise<void> {
  guards.splice(guards.indexOf(wg), 1);
  await wg.close();
}

test('Redis restarted empty, then a NEW writeguard with the default config: not ready, the completed key is refused, until `store ack`', async () => {
  const s = await redis();
  const cfg = storeConfig(s);
  assert.deepEqual(await initStore(cfg), { existed: false });

  const a = await guard(s);
  assert.equal(await a.server.store.whenReady(5000), true, 'A is ready on the initialised store');
  const first = await post(`${a.url}/v1/payments`, '{"amount":500}', { 'idempotency-key': 'K' });
  assert.equal(first.status, 201, await first.text());
  assert.equal(up.count('/v1/payments'), 1);

  await s.restart(); // no persistence: every record and the sentinel are gone
  await close(a);

  const b = await guard(s);
  // Long enough for B to connect and run several checks: it must stay closed all along.
  await sleep(1500);
  const ready = await readyz(b.adminUrl);
  assert.equal(ready.status, 503, `B must not adopt the emptied store: readyz ${ready.status} ${JSON.stringify(ready.body)}`);
  assert.equal(ready.body.ready, false);
  assert.equal(ready.body.reason, 'store_not_initialised');
  assert.match(String(ready.body.detail), /writeguard store (init|ack)/, 'readiness says what the operator must run');

  const retry = await post(`${b.url}/v1/payments`, '{"amount":500}', { 'idempotency-key': 'K' });
  const seen = `${retry.status} ${await retry.clone().text()}`;
  assert.equal(up.count('/v1/payments'), 1, `K must not run again (the retry was answered ${seen})`);
  assert.equal(retry.headers.get('x-should-retry'), 'true');
  await expectProblem(retry, 503, 'store_unavailable');
  // Nothing creates a sentinel behind the operator's back: still refused a moment later.
  await sleep(1200);
  await expectProblem(await post(`${b.url}/v1/payments`, '{"amount":1}', { 'idempotency-key': 'K-other' }), 503, 'store_unavailable');
  assert.equal(up.count('/v1/payments'), 1);
  assert.equal((await readyz(b.adminUrl)).status, 503);

  // The operator's explicit decision: accept the store as it is now.
  await ackStore(cfg);
  assert.equal(await b.server.store.whenReady(5000), true, 'B is ready after `store ack`');
  assert.ok(await until(async () => (await readyz(b.adminUrl)).status === 200, { timeoutMs: 3000 }), 'readyz 200 after `store ack`');
  const fresh = await post(`${b.url}/v1/payments`, '{"amount":2}', { 'idempotency-key': 'K-after-ack' });
  assert.equal(fresh.status, 201, await fresh.text());
  assert.equal(up.count('/v1/payments'), 2);
  // Documented consequence of the ack: the claim on K was lost with the data, so K is a new key
  // now and runs again. This is what `store ack` means — the operator checked the upstream first.
  const again = await post(`${b.url}/v1/payments`, '{"amount":500}', { 'idempotency-key': 'K' });
  assert.equal(again.status, 201, await again.text());
  assert.equal(again.headers.get('idempotent-replayed'), null);
  assert.equal(up.count('/v1/payments'), 3, "after the ack, K ran again: the operator's explicit decision");
  await close(b);
});

test('the default config on a brand-new empty Redis: writes refused (readyz names `writeguard store init`) until `store init`', async () => {
  const s = await redis();
  const wg = await guard(s);
  const before = up.count('/v1/payments');
  await sleep(800); // several checks: none may initialise the store
  const ready = await readyz(wg.adminUrl);
  assert.equal(
    ready.status,
    503,
    `an empty store is not adopted by the default config: readyz ${ready.status} ${JSON.stringify(ready.body)}`,
  );
  assert.equal(ready.body.ready, false);
  assert.equal(ready.body.reason, 'store_not_initialised');
  assert.match(String(ready.body.detail), /writeguard store init/);

  const refused = await post(`${wg.url}/v1/payments`, '{"amount":3}', { 'idempotency-key': 'new-1' });
  const seen = `${refused.status} ${await refused.clone().text()}`;
  assert.equal(up.count('/v1/payments'), before, `no write may run before \`store init\` (answered ${seen})`);
  await expectProblem(refused, 503, 'store_unavailable');

  assert.deepEqual(await initStore(storeConfig(s)), { existed: false }, 'writeguard created no sentinel of its own');
  assert.equal(await wg.server.store.whenReady(5000), true, 'ready after `store init`');
  assert.ok(await until(async () => (await readyz(wg.adminUrl)).status === 200, { timeoutMs: 3000 }), 'readyz 200 after `store init`');
  const ok = await post(`${wg.url}/v1/payments`, '{"amount":3}', { 'idempotency-key': 'new-1' });
  assert.equal(ok.status, 201, await ok.text());
  assert.equal(up.count('/v1/payments'), before + 1);
  const replay = await post(`${wg.url}/v1/payments`, '{"amount":3}', { 'idempotency-key': 'new-1' });
  assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  await replay.arrayBuffer();
  assert.equal(up.count('/v1/payments'), before + 1);
});
