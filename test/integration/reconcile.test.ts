// A route's reconcile probe settles an unknown outcome on the agent's retry: found → the upstream's
// answer is replayed; not found → the key is released and the retry runs once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let up: CountingUpstream;
let wg: RunningWriteguard;
/** What the upstream really did, by the key it received. */
const ledger = new Map<string, string>();
let dropAnswers = true;

before(async () => {
  up = await startUpstream((req, res) => {
    const url = new URL(req.url, 'http://upstream');
    if (req.method === 'GET' && url.pathname === '/api/v1/ops') {
      const op = ledger.get(url.searchParams.get('key') ?? '');
      res.writeHead(op === undefined ? 404 : 200, { 'content-type': 'application/json' });
      return void res.end(op ?? '{"error":{"code":"not_found"}}');
    }
    const key = String(req.headers['idempotency-key']);
    if (req.url === '/api/v1/transfers/lost') {
      // Executed, recorded, and the answer lost on the way back.
      ledger.set(key, `{"id":"tr_${ledger.size + 1}","status":"posted"}`);
      if (dropAnswers) return void res.socket?.destroy();
    }
    if (req.url === '/api/v1/transfers/refused' && dropAnswers) return void res.socket?.destroy(); // never recorded
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end('{"id":"tr_new"}');
  });
  wg = await startWriteguard({
    upstreams: [
      {
        name: 'ledger',
        target: `${up.url}/api`,
        routes: [{ match: 'POST /v1/transfers/*', reconcile: { path: '/v1/ops?key={key}' } }],
      },
    ],
  });
});
after(async () => {
  await wg.close();
  await up.close();
});

test("found: the retry gets the upstream's own record of the write, which is not re-sent", async () => {
  await expectProblem(await post(`${wg.url}/v1/transfers/lost`, '{"amount":5}', { 'idempotency-key': 'rc-found' }), 502, 'outcome_unknown');
  dropAnswers = false;
  const retry = await post(`${wg.url}/v1/transfers/lost`, '{"amount":5}', { 'idempotency-key': 'rc-found' });
  assert.equal(retry.status, 200);
  assert.equal(retry.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(await retry.json(), { id: 'tr_1', status: 'posted' });
  assert.equal(up.count('/api/v1/transfers/lost'), 1);
  assert.equal(up.count('/api/v1/ops'), 1, 'asked once; settled from then on');
  assert.equal(
    (await post(`${wg.url}/v1/transfers/lost`, '{"amount":5}', { 'idempotency-key': 'rc-found' })).headers.get('idempotent-replayed'),
    'true',
  );
  assert.equal(up.count('/api/v1/ops'), 1);
  assert.deepEqual(await wg.server.store.deadLetters(10), []);
  dropAnswers = true;
});

test('not found: the key is released and the retry runs exactly once', async () => {
  await expectProblem(
    await post(`${wg.url}/v1/transfers/refused`, '{"amount":6}', { 'idempotency-key': 'rc-missing' }),
    502,
    'outcome_unknown',
  );
  dropAnswers = false;
  const retry = await post(`${wg.url}/v1/transfers/refused`, '{"amount":6}', { 'idempotency-key': 'rc-missing' });
  assert.equal(retry.status, 201);
  assert.equal(up.count('/api/v1/transfers/refused'), 2);
  assert.equal(
    (await post(`${wg.url}/v1/transfers/refused`, '{"amount":6}', { 'idempotency-key': 'rc-missing' })).headers.get('idempotent-replayed'),
    'true',
  );
  assert.equal(up.count('/api/v1/transfers/refused'), 2);
  dropAnswers = true;
});
