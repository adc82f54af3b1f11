// Redis down or amnesiac: writes fail closed (503, nothing sent), reads keep flowing, recovery needs no restart
// of writeguard — and a Redis that came back empty is refused until an operator acknowledges it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectProblem, post } from '../helpers/problem.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { until } from '../helpers/wait.js';
import { CLI, startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let up: CountingUpstream;
let releaseHeld: (() => void) | null = null;
before(async () => {
  up = await startUpstream((req, res) => {
    const answer = (): void => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    };
    // /v1/held answers only when the test says so: the store can fail while the write is upstream.
    if (req.url === '/v1/held') releaseHeld = answer;
    else if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"items":[]}');
    } else answer();
  });
});
after(async () => {
  await up.close();
});

async function withWriteguard(redis: RedisServer, body: (wg: RunningWriteguard) => Promise<void>): Promise<void> {
  const wg = await startWriteguard({
    store: { kind: 'redis', url: redis.url, commandTimeoutMs: 300, initOnEmpty: true },
    upstreams: [{ name: 'pay', target: up.url, timeoutMs: 2000, idempotency: { leaseMs: 2500 } }],
  });
  try {
    assert.equal(await wg.server.store.whenReady(5000), true);
    await body(wg);
  } finally {
    await wg.close();
  }
}

/** Writes while the store cannot be trusted: every one refused with 503, none sent. */
async function assertWritesRefused(wg: RunningWriteguard, tag: string, why: 'store_unreachable' | 'store_lost_data'): Promise<void> {
  const before = up.count('/v1/payments');
  for (let i = 0; i < 3; i++) {
    const res = await post(`${wg.url}/v1/payments`, `{"n":"${tag}-${i}"}`, { 'idempotency-key': `${tag}-${i}` });
    assert.equal(res.headers.get('x-should-retry'), 'true');
    await expectProblem(res, 503, 'store_unavailable');
  }
  assert.equal(up.count('/v1/payments'), before, 'no write reached the upstream');
  const ready = await fetch(`${wg.adminUrl}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal(((await ready.json()) as { reason: string }).reason, why, 'readiness says why writes are refused');
  assert.equal((await fetch(`${wg.url}/v1/items`)).status, 200, 'reads keep flowing');
}

test('Redis stopped mid-run: writes fail closed; restarted with its data (AOF): writes resume without restarting writeguard', async () => {
  const redis = await startRedis({ appendonly: true });
  try {
    await withWriteguard(redis, async (wg) => {
      assert.equal((await post(`${wg.url}/v1/payments`, '{"n":0}', { 'idempotency-key': 'aof-0' })).status, 201);
      redis.kill('SIGTERM');
      assert.ok(await until(async () => !wg.server.store.ready(), { timeoutMs: 5000 }));
      await assertWritesRefused(wg, 'aof-down', 'store_unreachable');
      await redis.restart();
      assert.equal(await wg.server.store.whenReady(10_000), true, 'ready again after reconnecting');
      assert.equal((await post(`${wg.url}/v1/payments`, '{"n":"after"}', { 'idempotency-key': 'aof-after' })).status, 201);
      // The record written before the outage survived it: its retry replays.
      const replay = await post(`${wg.url}/v1/payments`, '{"n":0}', { 'idempotency-key': 'aof-0' });
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    });
  } finally {
    await redis.stop();
  }
});

test('Redis restarted empty (no persistence): writes refused until `writeguard store ack`, then they run', async () => {
  const redis = await startRedis({ appendonly: false });
  try {
    await withWriteguard(redis, async (wg) => {
      assert.equal((await post(`${wg.url}/v1/payments`, '{"n":0}', { 'idempotency-key': 'empty-0' })).status, 201);
      await redis.restart();
      // Reconnected, but the sentinel it remembered is gone: the store forgot every claim.
      await sleep(1500);
      assert.equal(wg.server.store.ready(), false);
      await assertWritesRefused(wg, 'empty-down', 'store_lost_data');

      const ack = spawnSync(process.execPath, [CLI, 'store', 'ack'], {
        env: { PATH: process.env.PATH, REDIS_URL: redis.url },
        encoding: 'utf8',
        timeout: 10_000,
      });
      assert.equal(ack.status, 0, ack.stderr);
      assert.equal(await wg.server.store.whenReady(5000), true);
      assert.equal((await post(`${wg.url}/v1/payments`, '{"n":"acked"}', { 'idempotency-key': 'empty-acked' })).status, 201);
    });
  } finally {
    await redis.stop();
  }
});

test('the store fails after the write was sent: the agent still gets the answer, marked Writeguard-Stored: false; the retry is outcome_unknown', async () => {
  const redis = await startRedis({ appendonly: true });
  try {
    await withWriteguard(redis, async (wg) => {
      const pending = post(`${wg.url}/v1/held`, '{"n":1}', { 'idempotency-key': 'stored-false' });
      assert.ok(await until(async () => releaseHeld !== null, { timeoutMs: 5000 }), 'the write reached the upstream');
      redis.kill('SIGTERM');
      assert.ok(await until(async () => !wg.server.store.ready(), { timeoutMs: 5000 }));
      releaseHeld!();
      const answer = await pending;
      assert.equal(answer.status, 201, "the upstream's answer is the truth and reaches the agent");
      assert.equal(answer.headers.get('writeguard-stored'), 'false');

      await redis.restart();
      assert.equal(await wg.server.store.whenReady(10_000), true);
      // The record stayed in phase `sent`; once its lease lapses nobody can know it completed.
      await sleep(2600);
      await expectProblem(await post(`${wg.url}/v1/held`, '{"n":1}', { 'idempotency-key': 'stored-false' }), 502, 'outcome_unknown');
      assert.equal(up.count('/v1/held'), 1);
    });
  } finally {
    await redis.stop();
  }
});
