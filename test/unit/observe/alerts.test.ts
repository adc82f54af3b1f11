// Alerts without a network: signing and its verification, the backoff, the queue's bound and what
// it counts, the events filter, the no-op when no webhook is configured. Deliveries go to undici's
// MockAgent; test/integration/alerts-webhook.test.ts delivers to a real receiver.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { MockAgent } from 'undici';
import { alertsSchema, ALERT_TYPES, type AlertType } from '../../../src/config/alerts-schema.js';
import {
  ALERT_BACKOFF,
  alertRetryDelayMs,
  createAlerts,
  NO_ALERTS,
  signatureHeader,
  verifySignature,
  type AlertInput,
  type AlertMetrics,
} from '../../../src/observe/alerts.js';
import { createLogger } from '../../../src/observe/logger.js';
import { Metrics } from '../../../src/observe/metrics.js';
import { eventually } from '../../helpers/wait.js';

const SECRET = 'unit-test-secret-0123456789abcdef';
const NOW = 1_800_000_000;
const log = createLogger({ level: 'silent' });

/** Counts by `${fate} ${event}`. */
function countingMetrics(): AlertMetrics & { counts: Map<string, number> } {
  const counts = new Map<string, number>();
  return { counts, alert: (event, fate) => void counts.set(`${fate} ${event}`, (counts.get(`${fate} ${event}`) ?? 0) + 1) };
}

const webhook = (over: Record<string, unknown> = {}) =>
  alertsSchema.parse({ webhook: { url: 'http://alerts.test/hook', secret: SECRET, ...over } });

const input = (type: AlertType = 'limit_exceeded', over: Partial<AlertInput> = {}): AlertInput => ({
  type,
  agent: 'agent-7',
  upstream: 'payments',
  keyHash: 'k1',
  ...over,
});

interface Seen {
  headers: Record<string, string>;
  body: string;
}

/** A MockAgent answering `status` to every POST /hook, recording what it got. */
function mockReceiver(t: TestContext, status = 200): { agent: MockAgent; seen: Seen[] } {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const seen: Seen[] = [];
  agent
    .get('http://alerts.test')
    .intercept({ path: '/hook', method: 'POST' })
    .reply((opts) => {
      seen.push({ headers: opts.headers as Record<string, string>, body: String(opts.body) });
      return { statusCode: status, data: '' };
    })
    .persist();
  t.after(() => agent.close());
  return { agent, seen };
}

test('a signature verifies over the exact body, secret and a recent timestamp', () => {
  const body = JSON.stringify({ id: 'e1', type: 'limit_exceeded', amount: 2450 });
  const header = signatureHeader(body, SECRET, NOW);
  assert.match(header, /^t=1800000000,v1=[0-9a-f]{64}$/);
  assert.equal(verifySignature(header, body, SECRET, 300, NOW), true);
  assert.equal(verifySignature(header, body, SECRET, 300, NOW + 300), true, 'at the edge of the tolerance');

  // Tampered: the body, the timestamp, the signature, the secret.
  assert.equal(verifySignature(header, body.replace('2450', '2451'), SECRET, 300, NOW), false);
  assert.equal(verifySignature(header, `${body} `, SECRET, 300, NOW), false);
  assert.equal(verifySignature(header.replace('t=1800000000', 't=1800000001'), body, SECRET, 300, NOW), false);
  const v1 = header.split('v1=')[1]!;
  const flipped = `${v1.slice(0, -1)}${v1.endsWith('0') ? '1' : '0'}`;
  assert.equal(verifySignature(`t=${NOW},v1=${flipped}`, body, SECRET, 300, NOW), false);
  assert.equal(verifySignature(`t=${NOW},v1=${v1.slice(0, 10)}`, body, SECRET, 300, NOW), false, 'a prefix of the signature');
  assert.equal(verifySignature(header, body, `${SECRET}x`, 300, NOW), false);

  // Old (a replay) or far in the future.
  assert.equal(verifySignature(header, body, SECRET, 300, NOW + 301), false);
  assert.equal(verifySignature(header, body, SECRET, 300, NOW - 301), false);
  assert.equal(verifySignature(signatureHeader(body, SECRET, NOW - 3600), body, SECRET), false, 'default tolerance, real clock');
  assert.equal(verifySignature(signatureHeader(body, SECRET), body, SECRET), true, 'default tolerance, real clock');

  // Malformed headers.
  for (const bad of ['', 'garbage', `v1=${v1}`, `t=${NOW}`, `t=abc,v1=${v1}`, `t=${NOW}.5,v1=${v1}`, `t=-${NOW},v1=${v1}`]) {
    assert.equal(verifySignature(bad, body, SECRET, 300, NOW), false, bad);
  }
  // Spaces around parts, and several v1 values (a receiver rotating secrets) where one matches.
  assert.equal(verifySignature(` t=${NOW} , v1=${'0'.repeat(64)} , v1=${v1} `, body, SECRET, 300, NOW), true);
});

test('backoff: exponential from the base, capped, with jitter in the upper half', () => {
  const backoff = { baseMs: 250, capMs: 30_000 };
  assert.deepEqual(ALERT_BACKOFF, backoff);
  assert.equal(
    alertRetryDelayMs(1, backoff, () => 0),
    125,
  );
  assert.equal(
    alertRetryDelayMs(1, backoff, () => 1),
    250,
  );
  assert.equal(
    alertRetryDelayMs(3, backoff, () => 1),
    1000,
  );
  assert.equal(
    alertRetryDelayMs(20, backoff, () => 1),
    30_000,
  );
  assert.equal(
    alertRetryDelayMs(20, backoff, () => 0),
    15_000,
  );
  for (let n = 1; n < 40; n++) {
    const d = alertRetryDelayMs(n, backoff);
    assert.ok(d >= 125 && d <= 30_000, `${n}: ${d}`);
  }
});

test('with no webhook, createAlerts is a no-op', async () => {
  const metrics = countingMetrics();
  const alerts = createAlerts({ webhook: null }, { log, metrics });
  assert.equal(alerts, NO_ALERTS);
  for (const type of ALERT_TYPES) assert.equal(alerts.emit(input(type)), undefined);
  await alerts.close(1000);
  assert.equal(metrics.counts.size, 0);
});

test('the queue is bounded: what does not fit is dropped and counted, by event', async (t) => {
  const { agent, seen } = mockReceiver(t);
  const metrics = countingMetrics();
  const alerts = createAlerts(webhook({ queueSize: 3 }), { log, metrics, dispatcher: agent });
  for (let i = 0; i < 3; i++) alerts.emit(input('limit_exceeded'));
  alerts.emit(input('limit_exceeded'));
  alerts.emit(input('outcome_unknown'));
  assert.equal(metrics.counts.get('dropped limit_exceeded'), 1);
  assert.equal(metrics.counts.get('dropped outcome_unknown'), 1);
  assert.equal(seen.length, 0, 'nothing is sent inside emit');

  // The queue drains, and has room again.
  await eventually(() => metrics.counts.get('delivered limit_exceeded') === 3, 5000, { what: 'three deliveries' });
  alerts.emit(input('outcome_unknown'));
  await alerts.close(5000);
  assert.equal(metrics.counts.get('delivered outcome_unknown'), 1);
  assert.equal(seen.length, 4);
  assert.equal(metrics.counts.get('dropped limit_exceeded'), 1);
});

test('the dropped counter is writeguard_alerts_dropped_total{event} on /metrics', async (t) => {
  const { agent, seen } = mockReceiver(t);
  const metrics = new Metrics(() => Promise.resolve(0));
  const alerts = createAlerts(webhook({ queueSize: 1 }), { log, metrics, dispatcher: agent });
  alerts.emit(input('agent_paused'));
  alerts.emit(input('agent_paused'));
  alerts.emit(input('agent_paused'));
  await alerts.close(0); // stops before delivering: the queued one is dropped too
  assert.equal(seen.length, 0);
  assert.match(await metrics.registry.metrics(), /^writeguard_alerts_dropped_total\{event="agent_paused"\} 3$/m);
  for (const name of ['writeguard_alerts_delivered_total', 'writeguard_alerts_failed_total']) {
    assert.match(await metrics.registry.metrics(), new RegExp(`^# TYPE ${name} counter$`, 'm'));
  }
});

test('only the configured events are sent; the others are ignored, not counted', async (t) => {
  const { agent, seen } = mockReceiver(t);
  const metrics = countingMetrics();
  const alerts = createAlerts(webhook({ events: ['outcome_unknown'], queueSize: 1 }), { log, metrics, dispatcher: agent });
  alerts.emit(input('limit_exceeded'));
  alerts.emit(input('agent_paused'));
  alerts.emit(input('approval_required'));
  alerts.emit(input('nonsense' as AlertType));
  alerts.emit(input('outcome_unknown', { amount: 2450, budget: null, detail: 'no answer after 30 s' }));
  await alerts.close(5000);
  assert.deepEqual([...metrics.counts], [['delivered outcome_unknown', 1]]);
  assert.equal(seen.length, 1);
  const body = JSON.parse(seen[0]!.body) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body), ['id', 'type', 'time', 'agent', 'upstream', 'key_hash', 'amount', 'budget', 'detail']);
  assert.equal(body.type, 'outcome_unknown');
  assert.equal(body.amount, 2450);
  assert.equal(body.detail, 'no answer after 30 s');
  assert.equal(seen[0]!.headers['writeguard-event-id'], body.id);
  assert.equal(seen[0]!.headers['content-type'], 'application/json');
  assert.equal(verifySignature(seen[0]!.headers['writeguard-signature']!, seen[0]!.body, SECRET), true);
});

test('missing optional fields are null in the body; time is the emit time', async (t) => {
  const { agent, seen } = mockReceiver(t);
  const alerts = createAlerts(webhook(), { log, metrics: countingMetrics(), dispatcher: agent });
  const before = Date.now();
  alerts.emit({ type: 'agent_paused', agent: 'a', upstream: null, keyHash: null });
  await alerts.close(5000);
  const body = JSON.parse(seen[0]!.body) as Record<string, unknown>;
  assert.match(String(body.id), /^[0-9a-f-]{36}$/);
  assert.deepEqual(
    { ...body, id: null, time: null },
    {
      id: null,
      type: 'agent_paused',
      time: null,
      agent: 'a',
      upstream: null,
      key_hash: null,
      amount: null,
      budget: null,
      detail: null,
    },
  );
  const time = Date.parse(String(body.time));
  assert.ok(time >= before && time <= Date.now());
});

test('emit never throws, even on an input it cannot serialise; later events still go', async (t) => {
  const { agent, seen } = mockReceiver(t);
  const metrics = countingMetrics();
  const alerts = createAlerts(webhook(), { log, metrics, dispatcher: agent });
  assert.doesNotThrow(() => alerts.emit(input('limit_exceeded', { amount: 1n as unknown as number })));
  alerts.emit(input('limit_exceeded'));
  await alerts.close(5000);
  assert.equal(seen.length, 1);
  assert.equal(metrics.counts.get('delivered limit_exceeded'), 1);
  assert.equal(metrics.counts.get('dropped limit_exceeded'), 1, 'the one that could not be queued is counted');
});

test('a receiver that refuses is retried up to maxAttempts, then the event is counted as failed', async (t) => {
  const { agent, seen } = mockReceiver(t, 503);
  const metrics = countingMetrics();
  const alerts = createAlerts(webhook({ maxAttempts: 3 }), { log, metrics, dispatcher: agent, backoff: { baseMs: 1, capMs: 5 } });
  alerts.emit(input('approval_required'));
  await eventually(() => metrics.counts.get('failed approval_required') === 1, 5000, { what: 'the event given up' });
  assert.equal(seen.length, 3);
  assert.equal(new Set(seen.map((s) => s.headers['writeguard-event-id'])).size, 1, 'every attempt is the same event');
  await alerts.close(1000);
  assert.equal(metrics.counts.get('delivered approval_required'), undefined);
});

test('after close, emit is a counted drop; close stops a backoff at once', async (t) => {
  const { agent, seen } = mockReceiver(t, 500);
  const metrics = countingMetrics();
  const alerts = createAlerts(webhook({ maxAttempts: 5 }), { log, metrics, dispatcher: agent, backoff: { baseMs: 60_000, capMs: 60_000 } });
  alerts.emit(input('limit_exceeded'));
  await eventually(() => seen.length === 1, 5000, { what: 'the first attempt' });
  await alerts.close(50); // the next attempt is a minute away: close does not wait for it
  assert.equal(metrics.counts.get('dropped limit_exceeded'), 1);
  alerts.emit(input('limit_exceeded'));
  assert.equal(metrics.counts.get('dropped limit_exceeded'), 2);
  assert.equal(seen.length, 1);
  await alerts.close(50); // a second close is the first one's
  assert.equal(metrics.counts.get('dropped limit_exceeded'), 2);
});
