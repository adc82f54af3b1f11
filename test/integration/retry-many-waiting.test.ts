// Many requests waiting out a backoff at once, each listening for shutdown on the one signal
// writeguard shares: no "possible EventTarget memory leak" warning (Node's default limit is 10
// listeners), and each request still gets its retried answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startUpstream } from '../helpers/upstream.js';
import { startWriteguard } from '../helpers/writeguard.js';

const WAITING = 30;

test(`${WAITING} reads waiting on a Retry-After together: each retried once, and no MaxListenersExceededWarning`, async (t) => {
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => void warnings.push(w);
  process.on('warning', onWarning);
  const seen = new Set<string>();
  const up = await startUpstream((req, res) => {
    if (seen.has(req.url)) return void res.end('{"ok":true}');
    seen.add(req.url);
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":"busy"}');
  });
  const wg = await startWriteguard({
    upstreams: [{ name: 'api', target: up.url, retry: { maxAttempts: 2, maxElapsedMs: 5000, budgetRatio: 1 } }],
  });
  t.after(async () => {
    process.off('warning', onWarning);
    await wg.close();
    await up.close();
  });
  const answers = await Promise.all(Array.from({ length: WAITING }, (_, i) => fetch(`${wg.url}/v1/items/${i}`)));
  assert.deepEqual(
    answers.map((r) => [r.status, r.headers.get('x-writeguard-attempts')]),
    answers.map(() => [200, '2']),
  );
  await Promise.all(answers.map((r) => r.arrayBuffer()));
  assert.equal(up.received.length, 2 * WAITING);
  assert.deepEqual(
    warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
    [],
  );
});
