// A writeguard killed mid-write: a sent write becomes outcome_unknown (never re-sent); an unsent
// claim is taken over after its lease and runs exactly once.
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeConfigFile } from '../helpers/config-file.js';
import { expectProblem, post } from '../helpers/problem.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { launchWriteguard, type WriteguardProcess } from '../helpers/writeguard.js';
import { fingerprint } from '../../src/idempotency/fingerprint.js';
import { keyHash } from '../../src/idempotency/key.js';
import { createRedisStore } from '../../src/store/index.js';

const LEASE_MS = 3000;
let redis: RedisServer;
let up: CountingUpstream;
let file: { path: string; remove(): void };
const held: ServerResponse[] = [];
const started: WriteguardProcess[] = [];

function launch(): WriteguardProcess {
  const wg = launchWriteguard(['--config', file.path]);
  started.push(wg);
  return wg;
}

before(async () => {
  redis = await startRedis();
  up = await startUpstream((req, res) => {
    if (req.url === '/v1/held') return void held.push(res); // executes, never answers while the test holds it
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end('{"id":"pay_1"}');
  });
  file = writeConfigFile({
    listen: { port: 0 },
    admin: { port: 0 },
    store: { kind: 'redis', url: redis.url, initOnEmpty: true },
    upstreams: [{ name: 'pay', target: up.url, timeoutMs: 2500, idempotency: { leaseMs: LEASE_MS } }],
  });
});
after(async () => {
  for (const res of held) res.socket?.destroy();
  for (const wg of started) wg.kill('SIGKILL');
  await Promise.all(started.map((wg) => wg.exited));
  await up.close();
  await redis.stop();
  file.remove();
});

test('SIGKILL while the upstream holds a sent write: after restart the retry is outcome_unknown, count stays 1', async () => {
  const first = launch();
  // The survivor is up before the kill, so the dead writer's lease is still running when it is asked.
  const second = launch();
  const { listen } = await first.ready;
  const url = (await second.ready).listen[0]!;
  const key = `crash-sent-${process.pid}`;
  const pending = post(`${listen[0]}/v1/held`, '{"amount":1}', { 'idempotency-key': key }).catch((err: Error) => err);
  for (let i = 0; i < 200 && up.count('/v1/held') === 0; i++) await sleep(10);
  assert.equal(up.count('/v1/held'), 1);
  first.kill('SIGKILL');
  assert.equal(await first.exited, null);
  assert.ok((await pending) instanceof Error, 'the agent lost its connection');

  // While the dead writer's lease runs, the key is in use; once it lapses, the outcome is unknown.
  await expectProblem(await post(`${url}/v1/held`, '{"amount":1}', { 'idempotency-key': key }), 409, 'idempotency_key_in_use');
  await sleep(LEASE_MS + 100);
  for (let i = 0; i < 2; i++)
    await expectProblem(await post(`${url}/v1/held`, '{"amount":1}', { 'idempotency-key': key }), 502, 'outcome_unknown');
  assert.equal(up.count('/v1/held'), 1);
});

test('a claim left by a writeguard that died before sending is taken over after its lease: one execution', async () => {
  // The state a writeguard killed between Begin and markSent leaves behind: a claimed record, never
  // sent, for exactly the request the agent will retry.
  const key = `crash-claimed-${process.pid}`;
  const body = '{"amount":1}';
  const wg = launch();
  const url = (await wg.ready).listen[0]!;
  const store = createRedisStore(redisStoreConfig(redis.url));
  try {
    assert.equal(await store.whenReady(5000), true);
    const claim = await store.begin({
      key: { scope: 'live:default', upstream: 'pay', keyHash: keyHash(key) },
      fingerprint: fingerprint({ method: 'POST', apiPath: '/v1/claimed', headers: [], body: Buffer.from(body), mode: 'bytes' }),
      upstreamKey: key,
      owner: 'dead-writer',
      leaseMs: LEASE_MS,
      mode: 'join',
      reclaimUnknown: false,
      meta: { method: 'POST', path: '/v1/claimed', keySource: 'client' },
      intent: null,
      charges: [],
      pointer: null,
      approval: null,
    });
    assert.equal(claim.outcome, 'acquired');
  } finally {
    await store.close();
  }
  await expectProblem(await post(`${url}/v1/claimed`, body, { 'idempotency-key': key }), 409, 'idempotency_key_in_use');
  await sleep(LEASE_MS + 100);
  const retry = await post(`${url}/v1/claimed`, body, { 'idempotency-key': key });
  assert.equal(retry.status, 201);
  const again = await post(`${url}/v1/claimed`, body, { 'idempotency-key': key });
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.equal(up.count('/v1/claimed'), 1);
});
