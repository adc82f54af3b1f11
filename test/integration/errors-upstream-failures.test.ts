// Proves what the agent gets when the upstream fails: down → 502 upstream_unreachable (GET and POST,
// retry strategy backoff); a POST taken and then the connection dropped → 502 outcome_unknown
// (reconcile), sent once; a hang past timeoutMs → a POST is 504 outcome_unknown after one attempt,
// a GET 504 upstream_timeout after its retries. Each answer is logged with its code.
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
