// Ambiguous outcomes are never re-sent: the write is held as outcome_unknown (a dead letter) until reconciled.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let up: CountingUpstream;
let wg: RunningWriteguard;
let honors: RunningWriteguard;
let n = 0;
const key = () => `unk-${process.pid}-${++n}`;

/** Per path, how the upstream misbehaves after it has read (and so "executed") the request. */
const modes: Record<string, 'reset' | 'hang' | '503' | '429' | 'ok'> = {};

before(async () => {
  up = await startUpstream((req, res) => {
    const mode = modes[req.url.split('?')[0]!] ?? 'ok';
    if (mode === 'reset') return void res.socket?.destroy();
    if (mode === 'hang') return; // never answers; writeguard's timeout fires
    if (mode === '503') {
      res.writeHead(503, { 'content-type': 'application/json', 'request-id': 'req_lb' });
      return void res.end('{"error":{"code":"service_unavailable"}}');
    }
    if (mode === '429') {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' });
      return void res.end('{"error":{"code":"rate_limited"}}');
    }
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  wg = await startWriteguard({ upstreams: [{ name: 'pay', target: up.url, timeoutMs: 300, idempotency: { leaseMs: 1000 } }] });
  honors = await startWriteguard({
    upstreams: [{ name: 'pay', target: up.url, timeoutMs: 300, idempotency: { leaseMs: 1000, upstreamHonorsKey: true } }],
  });
});
after(async () => {
  await wg.close();
  await honors.close();
  await up.close();
});

for (const [mode, status] of [
  ['reset', 502],
  ['hang', 504],
  ['503', 502],
] as const) {
  test(`upstream ${mode} after executing → ${status} outcome_unknown; retries never re-send; a dead letter exists`, async () => {
    const path = `/v1/${mode}`;
    modes[path] = mode;
    const k = key();
    const first = await expectProblem(await post(`${wg.url}${path}`, '{"amount":1}', { 'idempotency-key': k }), status, 'outcome_unknown');
    assert.equal(first.retry_strategy, 'reconcile');
    modes[path] = 'ok'; // even once the upstream is healthy again, the write is not re-sent blindly
    for (let i = 0; i < 3; i++) {
      const retry = await post(`${wg.url}${path}`, '{"amount":1}', { 'idempotency-key': k });
      assert.equal(retry.headers.get('x-should-retry'), 'false');
      await expectProblem(retry, 502, 'outcome_unknown');
    }
    assert.equal(up.count(path), 1);
    const dead = await wg.server.store.deadLetters(100);
    assert.ok(dead.some((d) => d.record.meta.path === path && d.record.state === 'outcome_unknown'));
  });
}

test("an upstream 503 answered as outcome_unknown logs the upstream code and request id beside writeguard's", async () => {
  const path = '/v1/logged-503';
  modes[path] = '503';
  const res = await post(`${wg.url}${path}`, '{}', { 'idempotency-key': key() });
  await expectProblem(res, 502, 'outcome_unknown');
  const line = (await wg.logs.waitForResponses(1)).findLast((l) => l.path === path);
  assert.equal(line?.code, 'outcome_unknown');
  assert.equal(line?.outcome, 'unknown');
  assert.equal(line?.upstream_code, 'service_unavailable');
  assert.equal(line?.upstream_request_id, 'req_lb');
  assert.equal(line?.request_id, res.headers.get('x-request-id'));
});

test('a 429 proves nothing ran: writeguard retries it with the same key; if it persists it goes back and the key is released', async () => {
  const path = '/v1/limited';
  modes[path] = '429';
  const k = key();
  const limited = await post(`${wg.url}${path}`, '{}', { 'idempotency-key': k });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers.get('x-writeguard-attempts'), '3');
  assert.equal(limited.headers.get('x-should-retry'), 'false', 'writeguard already retried: the SDK must not multiply attempts');
  assert.equal(up.count(path), 3);
  assert.deepEqual(new Set(up.received.filter((r) => r.url === path).map((r) => r.headers['idempotency-key'])), new Set([k]));
  modes[path] = 'ok';
  const retry = await post(`${wg.url}${path}`, '{}', { 'idempotency-key': k });
  assert.equal(retry.status, 201, 'the released key runs on the next retry');
  assert.equal(up.count(path), 4);
  // …and now it is completed: a third call replays.
  assert.equal((await post(`${wg.url}${path}`, '{}', { 'idempotency-key': k })).headers.get('idempotent-replayed'), 'true');
  assert.equal(up.count(path), 4);
});

test('a refused connection sends nothing: 502 upstream_unreachable and the key is released', async () => {
  const closed = await startUpstream();
  const target = closed.url;
  await closed.close();
  const dead = await startWriteguard({ upstreams: [{ name: 'pay', target }] });
  try {
    const k = key();
    await expectProblem(await post(`${dead.url}/v1/x`, '{}', { 'idempotency-key': k }), 502, 'upstream_unreachable');
    assert.equal(
      await dead.server.store.get({
        scope: 'live:default',
        upstream: 'pay',
        keyHash: (await import('../../src/idempotency/key.js')).keyHash(k),
      }),
      null,
    );
  } finally {
    await dead.close();
  }
});

test("upstreamHonorsKey: 503s are retried with one upstream key, then passed back; the agent's retry may re-send", async () => {
  const path = '/v1/honors';
  modes[path] = '503';
  const k = key();
  const answer = await post(`${honors.url}${path}`, '{}', { 'idempotency-key': k });
  assert.equal(answer.status, 503, "the upstream's own answer: safe to retry with the key, since the upstream dedupes on it");
  assert.equal(answer.headers.get('x-writeguard-attempts'), '3');
  assert.equal(answer.headers.get('x-should-retry'), 'false');
  assert.equal(up.count(path), 3);
  modes[path] = 'ok';
  const retry = await post(`${honors.url}${path}`, '{}', { 'idempotency-key': k });
  assert.equal(retry.status, 201);
  assert.equal(up.count(path), 4);
  const keys = up.received.filter((r) => r.url === path).map((r) => r.headers['idempotency-key']);
  assert.deepEqual(keys, [k, k, k, k]);
});
