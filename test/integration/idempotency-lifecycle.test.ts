// Record lifecycle seen over HTTP: duplicates held until the original settles (onConcurrent: wait),
// answers too large to store, tombstones after ttlSec, and the lease renewed while an attempt runs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { keyHash } from '../../src/idempotency/key.js';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let up: CountingUpstream;
let wg: RunningWriteguard;

before(async () => {
  up = await startUpstream((req, res) => {
    const delayMs = req.url.startsWith('/slow') ? 400 : req.url.startsWith('/long') ? 1500 : 0;
    setTimeout(() => {
      res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}` });
      res.end(req.url.startsWith('/big') ? JSON.stringify({ blob: 'x'.repeat(4096) }) : `{"n":${up.received.length}}`);
    }, delayMs);
  });
  wg = await startWriteguard({
    upstreams: [
      {
        name: 'pay',
        target: up.url,
        timeoutMs: 2000,
        idempotency: { maxStoredResponseBytes: 1024, leaseMs: 2100 },
        routes: [
          { match: 'POST /slow/*', idempotency: { onConcurrent: 'wait', waitMs: 3000 } },
          { match: 'POST /short/*', idempotency: { ttlSec: 0.3, tombstoneSec: 60 } },
        ],
      },
    ],
  });
});
after(async () => {
  await wg.close();
  await up.close();
});

test('onConcurrent: wait holds a duplicate until the original settles, then replays it', async () => {
  const [a, b] = await Promise.all([
    post(`${wg.url}/slow/pay`, '{"a":1}', { 'idempotency-key': 'wait-1' }),
    sleep(50).then(() => post(`${wg.url}/slow/pay`, '{"a":1}', { 'idempotency-key': 'wait-1' })),
  ]);
  assert.equal(a.status, 201);
  assert.equal(b.status, 201);
  assert.equal(b.headers.get('idempotent-replayed'), 'true');
  assert.equal(await a.text(), await b.text());
  assert.equal(up.count('/slow/pay'), 1);
});

test('an answer over maxStoredResponseBytes reaches the agent; its retry gets 409 response_not_replayable, never a re-run', async () => {
  const first = await post(`${wg.url}/big/pay`, '{}', { 'idempotency-key': 'big-1' });
  assert.equal(first.status, 201);
  assert.equal((await first.text()).length > 4096, true);
  const retry = await expectProblem(await post(`${wg.url}/big/pay`, '{}', { 'idempotency-key': 'big-1' }), 409, 'response_not_replayable');
  assert.equal(retry.retry_strategy, 'no_retry');
  assert.equal(up.count('/big/pay'), 1);
});

test('after ttlSec the record is a tombstone: 409 idempotency_key_expired, the write is not run again', async () => {
  assert.equal((await post(`${wg.url}/short/pay`, '{}', { 'idempotency-key': 'short-1' })).status, 201);
  assert.equal((await post(`${wg.url}/short/pay`, '{}', { 'idempotency-key': 'short-1' })).headers.get('idempotent-replayed'), 'true');
  await sleep(400);
  await expectProblem(await post(`${wg.url}/short/pay`, '{}', { 'idempotency-key': 'short-1' }), 409, 'idempotency_key_expired');
  // The fingerprint is kept: another body on the key is still a mismatch.
  await expectProblem(
    await post(`${wg.url}/short/pay`, '{"other":1}', { 'idempotency-key': 'short-1' }),
    422,
    'idempotency_key_reuse_mismatch',
  );
  assert.equal(up.count('/short/pay'), 1);
});

test('the lease is renewed while the attempt runs', async () => {
  const key = { scope: 'live:default', upstream: 'pay', keyHash: keyHash('long-1') };
  const pending = post(`${wg.url}/long/pay`, '{}', { 'idempotency-key': 'long-1' });
  await sleep(150);
  const early = await wg.server.store.get(key);
  assert.equal(early?.phase, 'sent');
  await sleep(1000); // past one renewal period (leaseMs / 3 = 700 ms)
  const later = await wg.server.store.get(key);
  assert.ok(later !== null && early !== null && later.leaseUntil > early.leaseUntil, 'leaseUntil moved forward');
  assert.equal((await pending).status, 201);
});
