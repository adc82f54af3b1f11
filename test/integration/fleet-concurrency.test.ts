// Two writeguard processes sharing one Redis: 50 concurrent duplicates → exactly one upstream execution.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { writeConfigFile } from '../helpers/config-file.js';
import { expectProblem, post } from '../helpers/problem.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { launchWriteguard, type WriteguardProcess } from '../helpers/writeguard.js';

let redis: RedisServer;
let up: CountingUpstream;
let file: { path: string; remove(): void };
const fleet: WriteguardProcess[] = [];
const urls: string[] = [];

before(async () => {
  redis = await startRedis();
  up = await startUpstream((_req, res) => {
    setTimeout(() => {
      res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}` });
      res.end(JSON.stringify({ id: `pay_${up.received.length}` }));
    }, 150);
  });
  file = writeConfigFile({
    listen: { port: 0 },
    admin: { port: 0 },
    store: { kind: 'redis', url: redis.url, initOnEmpty: true },
    upstreams: [{ name: 'pay', target: up.url }],
  });
  for (let i = 0; i < 2; i++) fleet.push(launchWriteguard(['--config', file.path]));
  for (const wg of fleet) urls.push((await wg.ready).listen[0]!);
});
after(async () => {
  for (const wg of fleet) wg.kill('SIGKILL');
  await Promise.all(fleet.map((wg) => wg.exited));
  await up.close();
  await redis.stop();
  file.remove();
});

test('50 concurrent requests, one key and body, over two processes: one execution', async () => {
  const key = `fleet-${process.pid}`;
  const answers = await Promise.all(
    Array.from({ length: 50 }, (_, i) => post(`${urls[i % 2]}/v1/payments`, '{"amount":2500}', { 'idempotency-key': key })),
  );
  assert.equal(up.count('/v1/payments'), 1);
  const winners = answers.filter((r) => r.status === 201);
  assert.equal(winners.length >= 1, true);
  for (const r of answers) {
    if (r.status === 409) await expectProblem(r, 409, 'idempotency_key_in_use');
    else assert.equal(r.status, 201);
  }
  const bodies = new Set(await Promise.all(winners.map((r) => r.text())));
  assert.equal(bodies.size, 1, 'every winner saw the one execution');

  // Once settled, each process replays it.
  for (const url of urls) {
    const replay = await post(`${url}/v1/payments`, '{"amount":2500}', { 'idempotency-key': key });
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    assert.equal(await replay.text(), [...bodies][0]);
  }
  assert.equal(up.count('/v1/payments'), 1);
});
