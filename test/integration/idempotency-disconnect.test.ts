// The agent leaves mid-write: the attempt runs to its end, its answer is stored and logged, the retry replays it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let up: CountingUpstream;
let wg: RunningWriteguard;

before(async () => {
  up = await startUpstream((_req, res) => {
    setTimeout(() => {
      res.writeHead(201, { 'content-type': 'application/json', 'request-id': 'req_late' });
      res.end('{"id":"pay_late"}');
    }, 400);
  });
  wg = await startWriteguard({ upstreams: [{ name: 'pay', target: up.url }] });
});
after(async () => {
  await wg.close();
  await up.close();
});

test('disconnect mid-request: one execution, the response line is written, the retry replays', async () => {
  const k = `gone-${process.pid}`;
  await assert.rejects(post(`${wg.url}/v1/payments`, '{"amount":7}', { 'idempotency-key': k }, AbortSignal.timeout(100)));
  const [line] = await wg.logs.waitForResponses(1, 3000);
  assert.equal(line?.status, 201, 'the line carries the answer the agent would have had');
  assert.equal(line?.request_id, 'req_late');
  assert.equal(line?.client_gone, true);
  const retry = await post(`${wg.url}/v1/payments`, '{"amount":7}', { 'idempotency-key': k });
  assert.equal(retry.status, 201);
  assert.equal(retry.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(await retry.json(), { id: 'pay_late' });
  assert.equal(up.count('/v1/payments'), 1);
});
