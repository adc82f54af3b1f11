// Proves what the agent gets when the upstream fails: down → 502 upstream_unreachable (GET and POST,
// retry strategy backoff); a POST taken and then the connection dropped → 502 outcome_unknown
// (reconcile), sent once; a hang past timeoutMs → a POST is 504 outcome_unknown after one attempt,
// a GET 504 upstream_timeout after its retries; an answer cut mid-body → a passthrough POST and a GET
// 502 upstream_unreachable, a POST 502 outcome_unknown, and no rejection left unhandled (one stops the
// process). Each answer is logged with its code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { freePort } from '../helpers/ports.js';
import { expectProblem } from '../helpers/problem.js';
import { startUpstream } from '../helpers/upstream.js';
import { startWriteguard } from '../helpers/writeguard.js';

test('an upstream that is down: GET and POST are 502 upstream_unreachable', async (t) => {
  const port = await freePort();
  const downWg = await startWriteguard({ upstreams: [{ name: 'down', target: `http://127.0.0.1:${port}` }] });
  t.after(() => downWg.close());
  const get = await expectProblem(await fetch(`${downWg.url}/v1/x`, {}), 502, 'upstream_unreachable');
  assert.equal(get.retry_strategy, 'backoff');
  await expectProblem(
    await fetch(`${downWg.url}/v1/x`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } }),
    502,
    'upstream_unreachable',
  );
  const lines = await downWg.logs.waitForResponses(2);
  assert.deepEqual(
    lines.map((l) => [l.method, l.status, l.code]),
    [
      ['GET', 502, 'upstream_unreachable'],
      ['POST', 502, 'upstream_unreachable'],
    ],
  );
});

test('an upstream that takes a POST and then drops the connection: 502 outcome_unknown', async (t) => {
  const dropping = await startUpstream((_req, res) => void res.socket?.destroy());
  const dropWg = await startWriteguard({ upstreams: [{ name: 'drop', target: dropping.url }] });
  t.after(async () => {
    await dropWg.close();
    await dropping.close();
  });
  const p = await expectProblem(
    await fetch(`${dropWg.url}/v1/payments`, { method: 'POST', body: '{"amount":1}', headers: { 'content-type': 'application/json' } }),
    502,
    'outcome_unknown',
  );
  assert.equal(p.retry_strategy, 'reconcile');
  assert.equal(dropping.count('/v1/payments'), 1, 'the write reached the upstream exactly once');
  const [line] = await dropWg.logs.waitForResponses(1);
  assert.equal(line!.code, 'outcome_unknown');
  assert.equal(line!.outcome, 'unknown');
});

test('an upstream that hangs past timeoutMs: POST 504 outcome_unknown after one attempt, GET 504 upstream_timeout after its retries', async (t) => {
  const pending: ServerResponse[] = [];
  const hanging = await startUpstream((_req, res) => void pending.push(res));
  const slowWg = await startWriteguard({ upstreams: [{ name: 'slow', target: hanging.url, timeoutMs: 300 }] });
  t.after(async () => {
    for (const res of pending) res.destroy();
    await slowWg.close();
    await hanging.close();
  });
  let started = Date.now();
  const post = await expectProblem(
    await fetch(`${slowWg.url}/v1/payments`, { method: 'POST', body: '{"amount":1}', headers: { 'content-type': 'application/json' } }),
    504,
    'outcome_unknown',
  );
  let elapsed = Date.now() - started;
  assert.ok(elapsed >= 290 && elapsed < 3000, `answered after ${elapsed} ms`);
  assert.equal(post.retry_strategy, 'reconcile');
  assert.equal(hanging.count('/v1/payments'), 1);

  started = Date.now();
  await expectProblem(await fetch(`${slowWg.url}/v1/payments/p_1`, {}), 504, 'upstream_timeout');
  elapsed = Date.now() - started;
  assert.ok(elapsed >= 890 && elapsed < 4000, `answered after ${elapsed} ms`);
  assert.equal(hanging.count('/v1/payments/p_1'), 3, 'a read is safe to retry (maxAttempts 3); the write above was sent once');
});

test('an upstream that cuts its answer mid-body: a passthrough POST, a read and a write each get their problem, and nothing is left unhandled', async (t) => {
  // The head says 1000 bytes of JSON error; 21 come, then the connection goes.
  const cutting = await startUpstream((req, res) => {
    if (req.url === '/v1/ok') return void res.end('{"ok":true}');
    res.writeHead(500, { 'content-type': 'application/json', 'content-length': '1000' });
    res.write('{"error":{"message":"');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  const cutWg = await startWriteguard({
    upstreams: [{ name: 'cut', target: cutting.url, routes: [{ match: 'POST /v1/chat/completions', mode: 'passthrough' }] }],
  });
  // A rejection nobody handles stops a real writeguard (close-with-grace drains and exits on one).
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await cutWg.close();
    await cutting.close();
  });
  const post = (path: string): Promise<Response> =>
    fetch(`${cutWg.url}${path}`, { method: 'POST', body: '{"model":"m"}', headers: { 'content-type': 'application/json' } });

  // The passthrough reads a small error answer whole to find its code: the cut fails that read.
  const passthrough = await expectProblem(await post('/v1/chat/completions'), 502, 'upstream_unreachable');
  assert.match(passthrough.detail, /failed before a complete answer/);
  assert.equal(cutting.count('/v1/chat/completions'), 1, 'a passthrough is sent once, never retried');
  await expectProblem(await fetch(`${cutWg.url}/v1/items`), 502, 'upstream_unreachable');
  await expectProblem(await post('/v1/payments'), 502, 'outcome_unknown');
  assert.equal(cutting.count('/v1/payments'), 1);

  const ok = await fetch(`${cutWg.url}/v1/ok`);
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { ok: true });
  assert.deepEqual(unhandled, [], 'no unhandled rejection');
  const lines = await cutWg.logs.waitForResponses(4);
  assert.deepEqual(
    lines.map((l) => [l.method, l.path, l.status, l.code]),
    [
      ['POST', '/v1/chat/completions', 502, 'upstream_unreachable'],
      ['GET', '/v1/items', 502, 'upstream_unreachable'],
      ['POST', '/v1/payments', 502, 'outcome_unknown'],
      ['GET', '/v1/ok', 200, null],
    ],
  );
});
