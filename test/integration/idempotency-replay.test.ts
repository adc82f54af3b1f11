// A keyed write runs once; its retries get the stored answer, byte for byte; other requests on the key are refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let up: CountingUpstream;
let wg: RunningWriteguard;
let n = 0;
const key = () => `key-${process.pid}-${++n}`;

before(async () => {
  up = await startUpstream((req, res) => {
    // A body the proxy must not normalise: odd spacing, a request id in a header.
    res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}`, 'set-cookie': 'session=abc' });
    res.end(`{ "id": "pay_${up.received.length}",  "echo": ${JSON.stringify(req.body.toString())} }`);
  });
  wg = await startWriteguard({
    upstreams: [
      { name: 'pay', prefix: '/pay', target: up.url },
      { name: 'ledger', prefix: '/ledger', target: up.url, idempotency: { fingerprint: 'canonical-json' } },
    ],
  });
});
after(async () => {
  await wg.close();
  await up.close();
});

test('a retry with the same key and body replays the stored answer; the upstream ran it once', async () => {
  const k = key();
  const first = await post(`${wg.url}/pay/v1/payments`, '{"amount":100}', { 'idempotency-key': k });
  const firstBody = Buffer.from(await first.arrayBuffer());
  assert.equal(first.status, 201);
  assert.equal(first.headers.get('idempotency-key'), k);
  assert.equal(first.headers.get('idempotent-replayed'), null);
  assert.equal(up.count('/v1/payments'), 1);
  assert.equal(up.received[0]!.headers['idempotency-key'], k, 'a client key is forwarded as given');

  const again = await post(`${wg.url}/pay/v1/payments`, '{"amount":100}', { 'idempotency-key': k });
  assert.equal(again.status, 201);
  assert.deepEqual(Buffer.from(await again.arrayBuffer()), firstBody);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.equal(again.headers.get('x-idempotency-replayed'), 'true');
  assert.equal(again.headers.get('request-id'), first.headers.get('request-id'));
  assert.equal(again.headers.get('set-cookie'), null, 'stored headers are allow-listed');
  assert.equal(up.count('/v1/payments'), 1);

  const lines = await wg.logs.waitForResponses(2);
  const replayLine = lines.findLast((l) => l.path === '/pay/v1/payments');
  assert.equal(replayLine?.outcome, 'replayed');
  assert.equal(replayLine?.request_id, first.headers.get('request-id'), 'a replay logs the original request id');
});

test('the same key with another body is refused with 422 and never reaches the upstream', async () => {
  const k = key();
  const before = up.count();
  assert.equal((await post(`${wg.url}/pay/v1/payments`, '{"amount":100}', { 'idempotency-key': k })).status, 201);
  const problem = await expectProblem(
    await post(`${wg.url}/pay/v1/payments`, '{"amount":999}', { 'idempotency-key': k }),
    422,
    'idempotency_key_reuse_mismatch',
  );
  assert.equal(problem.idempotency_key, k);
  // Another path with the same key is another request too.
  await expectProblem(
    await post(`${wg.url}/pay/v1/refunds`, '{"amount":100}', { 'idempotency-key': k }),
    422,
    'idempotency_key_reuse_mismatch',
  );
  assert.equal(up.count() - before, 1);
});

test('canonical-json: reordered members replay; 23-digit amounts that differ in the last digit do not', async () => {
  const k = key();
  const before = up.count();
  assert.equal(
    (await post(`${wg.url}/ledger/v1/entries`, '{"amount":12345678901234567890123,"currency":"usd"}', { 'idempotency-key': k })).status,
    201,
  );
  const reordered = await post(`${wg.url}/ledger/v1/entries`, '{ "currency": "usd", "amount": 12345678901234567890123 }', {
    'idempotency-key': k,
  });
  assert.equal(reordered.status, 201);
  assert.equal(reordered.headers.get('idempotent-replayed'), 'true');
  await expectProblem(
    await post(`${wg.url}/ledger/v1/entries`, '{"amount":12345678901234567890124,"currency":"usd"}', { 'idempotency-key': k }),
    422,
    'idempotency_key_reuse_mismatch',
  );
  assert.equal(up.count() - before, 1);
});

test('50 concurrent requests with one key: exactly one execution, the rest replay or are told to retry', async () => {
  const k = key();
  up.respond((_req, res) => {
    setTimeout(() => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    }, 100);
  });
  try {
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => post(`${wg.url}/pay/v1/concurrent`, '{"amount":5}', { 'idempotency-key': k })),
    );
    const statuses = answers.map((r) => r.status);
    assert.equal(up.count('/v1/concurrent'), 1);
    assert.equal(statuses.filter((s) => s === 201).length >= 1, true);
    assert.deepEqual([...new Set(statuses)].sort(), statuses.includes(409) ? [201, 409] : [201]);
    for (const r of answers.filter((a) => a.status === 409)) {
      assert.equal(r.headers.get('x-should-retry'), 'true');
      assert.equal(r.headers.get('retry-after'), '1');
      await expectProblem(r, 409, 'idempotency_key_in_use');
    }
  } finally {
    up.respond((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(`{"id":"pay_${up.received.length}"}`);
    });
  }
});

test('invalid keys are refused before anything is claimed or sent', async () => {
  const before = up.count();
  await expectProblem(
    await post(`${wg.url}/pay/v1/payments`, '{}', { 'idempotency-key': 'x'.repeat(256) }),
    400,
    'idempotency_key_invalid',
  );
  await expectProblem(await post(`${wg.url}/pay/v1/payments`, '{}', { 'idempotency-key': 'has space' }), 400, 'idempotency_key_invalid');
  assert.equal(up.count(), before);
});
