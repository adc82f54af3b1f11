// The admin port after a scripted run: /metrics counters moved as the traffic says, /keys/:key shows a
// record, and neither exposes paths, keys or agents as labels.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildAdminApp } from '../../src/admin/plugin.js';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/observe/logger.js';
import { Metrics } from '../../src/observe/metrics.js';
import { StoreUnavailableError, type Store } from '../../src/store/store.js';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let up: CountingUpstream;
let wg: RunningWriteguard;
let reads503 = 0;

before(async () => {
  up = await startUpstream((req, res) => {
    if (req.url === '/v1/flaky' && reads503++ === 0) {
      res.writeHead(503, { 'retry-after-ms': '10' });
      return void res.end();
    }
    if (req.url === '/v1/broken') return void res.socket?.destroy();
    res.writeHead(req.method === 'GET' ? 200 : 201, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  wg = await startWriteguard({ upstreams: [{ name: 'pay', target: up.url }] });
});
after(async () => {
  await wg.close();
  await up.close();
});

/** Sample values by metric name and labels, from the Prometheus text format. */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${wg.adminUrl}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^(writeguard_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m !== null) samples.set(m[1]!, Number(m[2]));
  }
  return samples;
}

test('counters move with a scripted run', async () => {
  await post(`${wg.url}/v1/payments`, '{"a":1}', { 'idempotency-key': 'm-1' });
  await post(`${wg.url}/v1/payments`, '{"a":1}', { 'idempotency-key': 'm-1' }); // replay
  await post(`${wg.url}/v1/payments`, '{"a":2}', { 'idempotency-key': 'm-2', 'x-stainless-retry-count': '1' });
  assert.equal((await fetch(`${wg.url}/v1/flaky`)).status, 200); // one read retry
  await expectProblem(await post(`${wg.url}/v1/broken`, '{}', { 'idempotency-key': 'm-3' }), 502, 'outcome_unknown');
  await wg.logs.waitForResponses(5);

  const m = await scrape();
  assert.equal(m.get('writeguard_requests_total{upstream="pay",method="POST",outcome="forwarded",status_class="2xx"}'), 2);
  assert.equal(m.get('writeguard_requests_total{upstream="pay",method="POST",outcome="replayed",status_class="2xx"}'), 1);
  assert.equal(m.get('writeguard_requests_total{upstream="pay",method="POST",outcome="unknown",status_class="5xx"}'), 1);
  assert.equal(m.get('writeguard_requests_total{upstream="pay",method="GET",outcome="forwarded",status_class="2xx"}'), 1);
  assert.equal(m.get('writeguard_replays_total{upstream="pay"}'), 1);
  assert.equal(m.get('writeguard_sdk_retries_total{upstream="pay"}'), 1);
  assert.equal(m.get('writeguard_retries_total{upstream="pay",kind="read",reason="5xx"}'), 1);
  assert.equal(m.get('writeguard_upstream_attempts_total{upstream="pay",kind="read",status_class="5xx"}'), 1);
  assert.equal(m.get('writeguard_upstream_attempts_total{upstream="pay",kind="read",status_class="2xx"}'), 1);
  assert.equal(m.get('writeguard_upstream_attempts_total{upstream="pay",kind="write",status_class="2xx"}'), 2);
  assert.equal(m.get('writeguard_upstream_attempts_total{upstream="pay",kind="write",status_class="error"}'), 1);
  assert.equal(m.get('writeguard_dead_letters'), 1);
  assert.equal(m.get('writeguard_writes_in_flight'), 0);
  assert.ok((m.get('writeguard_store_duration_seconds_count{op="begin"}') ?? 0) >= 4);
  assert.equal(m.get('writeguard_request_duration_seconds_count{upstream="pay",method="POST"}'), 4);
  // Labels are bounded: no path, key or agent anywhere in the exposition.
  const text = await (await fetch(`${wg.adminUrl}/metrics`)).text();
  for (const leak of ['/v1/payments', 'm-1', 'default']) assert.ok(!text.includes(leak), leak);
});

test("GET /keys/:key shows a key's record; an unknown key is a 404", async () => {
  await post(`${wg.url}/v1/payments`, '{"a":9}', { 'idempotency-key': 'inspect-me' });
  const res = await fetch(`${wg.adminUrl}/keys/inspect-me`);
  assert.equal(res.status, 200);
  const { records } = (await res.json()) as { records: Array<Record<string, unknown>> };
  assert.equal(records.length, 1);
  assert.equal(records[0]!.state, 'completed');
  assert.equal(records[0]!.status, 201);
  assert.equal(records[0]!.attempts, 1);
  assert.equal(typeof records[0]!.fingerprint, 'string');
  await expectProblem(await fetch(`${wg.adminUrl}/keys/never-seen`), 404, 'not_found');
  // Scoped to an agent: that agent's record only.
  assert.equal((await fetch(`${wg.adminUrl}/keys/inspect-me?agent=default`)).status, 200);
  await expectProblem(await fetch(`${wg.adminUrl}/keys/inspect-me?agent=someone-else`), 404, 'not_found');
  await expectProblem(await fetch(`${wg.adminUrl}/keys/inspect-me?agent=bad{agent}`), 400, 'invalid_agent');
});

test("admin errors are problems from the one error table, like the proxy's", async () => {
  const res = await fetch(`${wg.adminUrl}/no-such-route`);
  const requestId = res.headers.get('x-request-id');
  const unknown = await expectProblem(res, 404, 'not_found');
  assert.equal(unknown.retry_strategy, 'fix_request');
  assert.equal(unknown.error.type, 'invalid_request_error');
  assert.ok(requestId !== null && requestId.length > 0);
  assert.equal(unknown.request_id, requestId);
});

test('a store that cannot answer is 503 store_unavailable, a failing route 500 internal_error, both problems', async () => {
  let failure: Error = new StoreUnavailableError('the store did not answer in time');
  // Every store method fails the same way; the admin routes never reach past it.
  const store = new Proxy({}, { get: (_target, name) => (name === 'then' ? undefined : () => Promise.reject(failure)) }) as Store;
  const app = buildAdminApp({
    config: parseConfig({ upstreams: [{ name: 'pay', target: 'http://127.0.0.1:9' }] }),
    log: createLogger({ level: 'silent' }),
    lifecycle: { draining: false },
    store,
    metrics: new Metrics(async () => 0),
  });
  try {
    const problem = async (url: string, status: number, code: string) => {
      const res = await app.inject({ url });
      assert.equal(res.statusCode, status, res.body);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const body = res.json<{ code: string; error: { code: string }; request_id: string }>();
      assert.deepEqual([body.code, body.error.code, body.request_id], [code, code, res.headers['x-request-id']]);
      return body;
    };
    await problem('/dead-letters', 503, 'store_unavailable');
    await problem('/keys/k-1', 503, 'store_unavailable');
    failure = new Error('a bug');
    const bug = await problem('/dead-letters', 500, 'internal_error');
    assert.ok(!JSON.stringify(bug).includes('a bug'), 'the internal message stays in the log');
  } finally {
    await app.close();
  }
});
