// The memory store is bounded (records and bytes): when full it refuses new writes (503 store_full,
// nothing sent) and never evicts a record, so every write that ran still replays.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const open: { close(): Promise<void> }[] = [];
after(async () => {
  for (const c of open.reverse()) await c.close();
});

async function setUp(
  memory: { maxRecords?: number; maxBytes?: number },
  bodyBytes = 0,
): Promise<{ up: CountingUpstream; wg: RunningWriteguard }> {
  const up = await startUpstream((req, res) => {
    res.writeHead(req.method === 'GET' ? 200 : 201, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}` });
    res.end(JSON.stringify({ id: `pay_${up.received.length}`, echo: req.body.toString(), pad: 'x'.repeat(bodyBytes) }));
  });
  open.push(up);
  const wg = await startWriteguard({ store: { kind: 'memory', memory }, upstreams: [{ name: 'pay', prefix: '/pay', target: up.url }] });
  open.push(wg);
  return { up, wg };
}

const pay = (wg: RunningWriteguard, key: string, amount: number): Promise<Response> =>
  post(`${wg.url}/pay/v1/payments`, JSON.stringify({ amount }), { 'idempotency-key': key });

test('maxRecords: five writes run, the sixth new key gets 503 store_full unsent, and the five still replay', async () => {
  const { up, wg } = await setUp({ maxRecords: 5 });
  const bodies: Buffer[] = [];
  for (let i = 1; i <= 5; i++) {
    const res = await pay(wg, `cap-${i}`, i);
    assert.equal(res.status, 201);
    bodies.push(Buffer.from(await res.arrayBuffer()));
  }
  assert.equal(up.count('/v1/payments'), 5);

  const problem = await expectProblem(await pay(wg, 'cap-6', 6), 503, 'store_full');
  assert.equal(problem.retry_strategy, 'backoff');
  assert.equal(problem.idempotency_key, 'cap-6');
  assert.match(problem.detail, /full/);
  assert.match(problem.detail, /not sent/);
  assert.match(problem.detail, /store\.memory/);
  assert.match(problem.detail, /redis/i);
  assert.equal(up.count('/v1/payments'), 5, 'a refused write never reaches the upstream');
  // Refused again, still unsent: a full store never makes room by dropping a live record.
  await expectProblem(await pay(wg, 'cap-6', 6), 503, 'store_full');
  await expectProblem(await pay(wg, 'cap-7', 7), 503, 'store_full');
  assert.equal(up.count('/v1/payments'), 5);

  for (let i = 1; i <= 5; i++) {
    const res = await pay(wg, `cap-${i}`, i);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('idempotent-replayed'), 'true', `cap-${i} replays`);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bodies[i - 1]);
  }
  assert.equal(up.count('/v1/payments'), 5, 'replays do not reach the upstream');

  const metrics = await (await fetch(`${wg.adminUrl}/metrics`)).text();
  assert.match(metrics, /^writeguard_memory_store_records 5$/m);
  assert.match(metrics, /^writeguard_memory_store_bytes \d+$/m);

  // Reads keep flowing through a full store.
  assert.equal((await fetch(`${wg.url}/pay/v1/payments/pay_1`)).status, 200);
  assert.equal(up.count('/v1/payments/pay_1'), 1);
});

test('maxBytes: with 100 KiB answers and a 200 KiB cap, two writes run and the third new key is refused unsent', async () => {
  const { up, wg } = await setUp({ maxBytes: 200 * 1024 }, 100 * 1024);
  const bodies: Buffer[] = [];
  for (let i = 1; i <= 2; i++) {
    const res = await pay(wg, `bytes-${i}`, i);
    assert.equal(res.status, 201);
    bodies.push(Buffer.from(await res.arrayBuffer()));
  }
  assert.equal(up.count('/v1/payments'), 2);

  await expectProblem(await pay(wg, 'bytes-3', 3), 503, 'store_full');
  assert.equal(up.count('/v1/payments'), 2);

  for (let i = 1; i <= 2; i++) {
    const res = await pay(wg, `bytes-${i}`, i);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bodies[i - 1], 'the 100 KiB answer replays byte for byte');
  }
  assert.equal(up.count('/v1/payments'), 2);
});

test('a record past its own TTL makes room: the refused key runs once it has expired', async () => {
  const up = await startUpstream();
  open.push(up);
  const wg = await startWriteguard({
    store: { kind: 'memory', memory: { maxRecords: 1 } },
    upstreams: [{ name: 'pay', prefix: '/pay', target: up.url, idempotency: { ttlSec: 0.3, tombstoneSec: 0 } }],
  });
  open.push(wg);
  assert.equal((await pay(wg, 'ttl-1', 1)).status, 201);
  await expectProblem(await pay(wg, 'ttl-2', 2), 503, 'store_full');
  assert.equal(up.count('/v1/payments'), 1);
  await new Promise((r) => setTimeout(r, 450));
  assert.equal((await pay(wg, 'ttl-2', 2)).status, 201);
  assert.equal(up.count('/v1/payments'), 2);
});
