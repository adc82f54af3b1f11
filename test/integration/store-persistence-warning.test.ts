// A store that persists nothing is warned about (DESIGN §3.12, "Hardened"): writeguard reads
// `INFO persistence`; with `aof_enabled:0` it logs a warn line whose msg mentions persistence, and
// /metrics shows `writeguard_store_persistent 0` (1 with AOF on). Readiness is not affected: RDB-only
// or no persistence is a documented risk, not a refusal.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { initStore } from '../../src/store/index.js';
import { post } from '../helpers/problem.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';
import { metric, readyz } from '../helpers/store-safety.js';
import { until } from '../helpers/wait.js';
import { startWriteguard } from '../helpers/writeguard.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import type { LogLine, RunningWriteguard } from '../helpers/writeguard.js';

const WARN = 'warn';

let up: CountingUpstream;
const servers: RedisServer[] = [];

before(async () => {
  up = await startUpstream();
});

after(async () => {
  await up.close();
  for (const s of servers) await s.stop();
});

async function guardOn(appendonly: boolean): Promise<RunningWriteguard> {
  const s = await startRedis({ appendonly });
  servers.push(s);
  await initStore(redisStoreConfig(s.url, { commandTimeoutMs: 300 }));
  const wg = await startWriteguard({
    store: { kind: 'redis', url: s.url, commandTimeoutMs: 300 },
    upstreams: [{ name: 'pay', target: up.url, timeoutMs: 2000, idempotency: { leaseMs: 2500 } }],
  });
  assert.equal(await wg.server.store.whenReady(5000), true, 'the store is ready either way');
  return wg;
}

function persistenceWarnings(lines: readonly LogLine[]): LogLine[] {
  return lines.filter((l) => l.level === WARN && /persist/i.test(l.msg));
}

test('Redis without AOF: one warn line about persistence, writeguard_store_persistent 0, and readiness stays true', async () => {
  const wg = await guardOn(false);
  try {
    assert.ok(
      await until(() => persistenceWarnings(wg.logs.lines).length > 0, { timeoutMs: 3000 }),
      `a warn line mentioning persistence; warn lines seen: ${JSON.stringify(wg.logs.lines.filter((l) => l.level === WARN))}`,
    );
    assert.ok(
      await until(async () => (await metric(wg.adminUrl, 'writeguard_store_persistent')) === 0, { timeoutMs: 3000 }),
      `writeguard_store_persistent is ${await metric(wg.adminUrl, 'writeguard_store_persistent')}, want 0`,
    );

    const ready = await readyz(wg.adminUrl);
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assert.equal(ready.body.ready, true);
    assert.equal(await metric(wg.adminUrl, 'writeguard_store_ready'), 1);
    const write = await post(`${wg.url}/v1/payments`, '{"amount":1}', { 'idempotency-key': 'p-0' });
    assert.equal(write.status, 201, await write.text());

    // Warned once, not on every readiness check (checks run about every second).
    await new Promise((r) => setTimeout(r, 2200));
    assert.equal(persistenceWarnings(wg.logs.lines).length, 1, JSON.stringify(persistenceWarnings(wg.logs.lines)));
  } finally {
    await wg.close();
  }
});

test('Redis with `appendonly yes`: no persistence warning, writeguard_store_persistent 1', async () => {
  const wg = await guardOn(true);
  try {
    assert.ok(
      await until(async () => (await metric(wg.adminUrl, 'writeguard_store_persistent')) === 1, { timeoutMs: 3000 }),
      `writeguard_store_persistent is ${await metric(wg.adminUrl, 'writeguard_store_persistent')}, want 1`,
    );
    await new Promise((r) => setTimeout(r, 1200));
    assert.deepEqual(persistenceWarnings(wg.logs.lines), []);
    assert.equal((await readyz(wg.adminUrl)).status, 200);
    assert.equal(await metric(wg.adminUrl, 'writeguard_store_ready'), 1);
  } finally {
    await wg.close();
  }
});
