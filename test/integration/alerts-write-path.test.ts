// Alerts from the write path itself (DESIGN §10.5): a write refused over budget, one that needs an
// approval and one whose outcome is unknown each reach a real loopback receiver as a signed event
// naming the agent, the upstream and the amounts — and the agent's answer is not held back by it.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { verifySignature } from '../../src/observe/alerts.js';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { eventually } from '../helpers/wait.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const SECRET = 'write-path-secret-0123456789abcdef';
const events: Array<Record<string, unknown>> = [];
let receiver: ReturnType<typeof createServer>;
let up: CountingUpstream;
let wg: RunningWriteguard;

before(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const header = req.headers['writeguard-signature'];
      if (typeof header === 'string' && verifySignature(header, body, SECRET)) events.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/writeguard`;
  // /v1/slow never answers in time: its write's outcome is unknown.
  up = await startUpstream((req, res) => {
    if (req.url === '/v1/slow') return;
    res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"pay_1"}');
  });
  wg = await startWriteguard({
    identity: { agentId: 'billing-agent' },
    budgets: [{ name: 'daily', match: 'POST /v1/payments', amount: 'body:amount', limit: 100, period: 'day' }],
    alerts: { webhook: { url, secret: SECRET } },
    upstreams: [
      {
        name: 'pay',
        target: up.url,
        timeoutMs: 300,
        idempotency: { leaseMs: 2000 },
        retry: { maxAttempts: 1 },
        approval: [{ match: 'POST /v1/payouts', amount: 'body:amount', above: 1000 }],
      },
    ],
  });
});
after(async () => {
  await wg.close();
  await up.close();
  receiver.closeAllConnections();
  await new Promise<void>((resolve) => receiver.close(() => resolve()));
});

const ofType = (type: string) => events.filter((e) => e['type'] === type);

test('limit_exceeded: a signed event with the agent, upstream, budget and amount', async () => {
  assert.equal((await post(`${wg.url}/v1/payments`, '{"amount":90}', { 'idempotency-key': 'a-1' })).status, 201);
  await expectProblem(await post(`${wg.url}/v1/payments`, '{"amount":20}', { 'idempotency-key': 'a-2' }), 403, 'limit_exceeded');
  await eventually(() => ofType('limit_exceeded').length === 1, 5000, { what: 'the limit_exceeded alert' });
  const [event] = ofType('limit_exceeded');
  assert.equal(event!['agent'], 'billing-agent');
  assert.equal(event!['upstream'], 'pay');
  assert.equal(event!['budget'], 'daily');
  assert.equal(event!['amount'], 20);
  assert.match(String(event!['key_hash']), /^[0-9a-f]{32}$/);
});

test('approval_required and outcome_unknown: one event each', async () => {
  await expectProblem(await post(`${wg.url}/v1/payouts`, '{"amount":5000}', { 'idempotency-key': 'p-1' }), 403, 'approval_required');
  const unknown = await post(`${wg.url}/v1/slow`, '{"amount":1}', { 'idempotency-key': 's-1' });
  assert.equal(unknown.status, 504);
  await eventually(() => ofType('approval_required').length === 1 && ofType('outcome_unknown').length === 1, 5000, {
    what: 'the approval_required and outcome_unknown alerts',
  });
  assert.equal(ofType('approval_required')[0]!['amount'], 5000);
  assert.equal(up.count('/v1/payouts'), 0, 'nothing sent while it waits for a person');
});
