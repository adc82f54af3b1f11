// Shutdown: SIGTERM lets in-flight requests finish and exits 0; while draining, readiness is 503 and new requests get 503 draining.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { expectProblem } from '../helpers/problem.js';
import { startUpstream, type Responder } from '../helpers/upstream.js';
import { eventually } from '../helpers/wait.js';
import { launchWriteguard, startWriteguard, type WriteguardProcess } from '../helpers/writeguard.js';

const HOLD_MS = 500;

/** Holds every POST for HOLD_MS before answering 201; reads answer at once. */
const slowWrites: Responder = async (req, res) => {
  if (req.method === 'POST') await new Promise((r) => setTimeout(r, HOLD_MS));
  res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json', 'request-id': `req_${req.method}` });
  res.end(JSON.stringify({ id: 'pay_1', body: req.body.toString('utf8') }));
};

const processes: WriteguardProcess[] = [];
after(async () => {
  for (const p of processes) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.kill('SIGKILL');
    await p.exited;
  }
});

test('SIGTERM with a write in flight: the write gets its 201, readiness turns 503, the process exits 0', async (t) => {
  const up = await startUpstream(slowWrites);
  t.after(() => up.close());
  const wg = launchWriteguard(['--upstream', up.url], { WRITEGUARD_PORT: '0', WRITEGUARD_ADMIN_PORT: '0' });
  processes.push(wg);
  const { listen, admin } = await wg.ready;
  assert.equal((await fetch(`${admin}/readyz`)).status, 200);

  // node:http with no keep-alive agent: the write's connection is its own.
  const write = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(
      `${listen[0]}/v1/payments`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end('{"amount":500}');
  });
  await eventually(() => up.count('/v1/payments') === 1, 3000, { what: 'the upstream to receive the write', intervalMs: 10 });
  const sentAt = Date.now();
  wg.kill('SIGTERM');

  // While the write is still held upstream, readiness says 503.
  await eventually(async () => (await fetch(`${admin}/readyz`)).status === 503, HOLD_MS, { what: 'readiness to turn 503', intervalMs: 10 });
  assert.equal(wg.child.exitCode, null, 'still running while the write is in flight');

  const answer = await write;
  assert.equal(answer.status, 201);
  assert.deepEqual(JSON.parse(answer.body), { id: 'pay_1', body: '{"amount":500}' });
  assert.ok(Date.now() - sentAt >= HOLD_MS - 100, "the answer came after the upstream's hold, not cut short");
  assert.equal(await wg.exited, 0, wg.stderr());
  assert.equal(up.count('/v1/payments'), 1, 'the write reached the upstream once');

  const lines = wg.logs.responses();
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.status, 201);
  assert.equal(lines[0]!.request_id, 'req_POST');
  assert.ok(wg.logs.lines.some((l) => l.msg === 'draining'));
  assert.ok(wg.logs.lines.some((l) => l.msg === 'stopped'));
});

test('SIGTERM when idle exits 0 promptly', async (t) => {
  const up = await startUpstream(slowWrites);
  t.after(() => up.close());
  const wg = launchWriteguard(['--upstream', up.url], { WRITEGUARD_PORT: '0', WRITEGUARD_ADMIN_PORT: '0' });
  processes.push(wg);
  const { listen } = await wg.ready;
  const res = await fetch(`${listen[0]}/v1/x`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const started = Date.now();
  wg.kill('SIGTERM');
  assert.equal(await wg.exited, 0, wg.stderr());
  assert.ok(Date.now() - started < 3000, 'an idle keep-alive connection does not hold the shutdown');
});

test('drain(): readiness 503, new requests 503 draining with Connection: close, upstream untouched', async (t) => {
  const up = await startUpstream(slowWrites);
  const wg = await startWriteguard({ upstreams: [{ name: 'pay', target: up.url }] });
  t.after(async () => {
    await wg.close();
    await up.close();
  });
  assert.equal((await fetch(`${wg.adminUrl}/readyz`)).status, 200);
  wg.server.drain();

  const ready = await fetch(`${wg.adminUrl}/readyz`);
  assert.equal(ready.status, 503);
  assert.deepEqual(await ready.json(), { ready: false, reason: 'draining' });
  assert.equal((await fetch(`${wg.adminUrl}/healthz`)).status, 200, 'still alive while draining');

  for (const init of [{}, { method: 'POST', body: '{"amount":1}', headers: { 'content-type': 'application/json' } }] as RequestInit[]) {
    const res = await fetch(`${wg.url}/v1/payments`, init);
    assert.equal(res.headers.get('connection'), 'close');
    // 503, problem+json, code draining in both places, request_id = x-request-id.
    const problem = await expectProblem(res, 503, 'draining');
    assert.equal(problem.retry_strategy, 'backoff');
  }
  assert.equal(up.received.length, 0);
  const lines = await wg.logs.waitForResponses(2);
  assert.deepEqual(
    lines.map((l) => [l.method, l.status, l.code]),
    [
      ['GET', 503, 'draining'],
      ['POST', 503, 'draining'],
    ],
  );
});

test('WRITEGUARD_DRAIN_MS: the process stops at the configured drain deadline, not at the write it is still waiting for', async (t) => {
  const HELD_MS = 4_000;
  const DRAIN_MS = 400;
  const up = await startUpstream(async (_req, res) => {
    await new Promise((r) => setTimeout(r, HELD_MS));
    res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
  });
  t.after(() => up.close());
  const wg = launchWriteguard(['--upstream', up.url], {
    WRITEGUARD_PORT: '0',
    WRITEGUARD_ADMIN_PORT: '0',
    WRITEGUARD_DRAIN_MS: String(DRAIN_MS),
  });
  processes.push(wg);
  const { listen } = await wg.ready;
  const warned = wg.logs.lines.filter((l) => l.level === 'warn' && /drainMs is not above the longest upstream timeoutMs/.test(l.msg));
  assert.equal(warned.length, 1, 'start-up says a deadline below timeoutMs can cut a write');
  const write = fetch(`${listen[0]}/v1/payments`, {
    method: 'POST',
    body: '{"amount":1}',
    headers: { 'content-type': 'application/json' },
  }).then(
    (r) => r.status,
    () => 'cut' as const,
  );
  await eventually(() => up.count('/v1/payments') === 1, 3000, { what: 'the upstream to receive the write', intervalMs: 10 });
  const sentAt = Date.now();
  wg.kill('SIGTERM');
  const code = await wg.exited;
  const tookMs = Date.now() - sentAt;
  assert.notEqual(code, 0, 'a drain cut short by its deadline is not a clean stop');
  assert.ok(tookMs >= DRAIN_MS - 50 && tookMs < HELD_MS - 1_000, `stopped after ${tookMs} ms: the drain deadline, not the write`);
  assert.equal(await write, 'cut', 'the write still held upstream was cut by the deadline');
});
