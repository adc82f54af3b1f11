// The Metrics facade's counts as a scrape reads them: writes in flight now, answers by outcome.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Metrics } from '../../../src/observe/metrics.js';

const line = (text: string, prefix: string): string | undefined => text.split('\n').find((l) => l.startsWith(prefix));

test('writes in flight are read at scrape time; answers and replays are counted by their labels', async () => {
  const metrics = new Metrics(() => Promise.resolve(0));
  metrics.writeStarted();
  metrics.writeStarted();
  metrics.writeEnded();
  const facts = { upstream: 'pay', method: 'POST', status: 201, durationMs: 3, sdkRetry: false };
  metrics.response({ ...facts, outcome: 'forwarded' });
  metrics.response({ ...facts, outcome: 'replayed', sdkRetry: true });
  metrics.response({ ...facts, outcome: 'replayed' });
  let text = await metrics.registry.metrics();
  assert.equal(line(text, 'writeguard_writes_in_flight '), 'writeguard_writes_in_flight 1');
  assert.equal(line(text, 'writeguard_replays_total{'), 'writeguard_replays_total{upstream="pay"} 2');
  assert.equal(line(text, 'writeguard_sdk_retries_total{'), 'writeguard_sdk_retries_total{upstream="pay"} 1');
  assert.ok(text.includes('writeguard_requests_total{upstream="pay",method="POST",outcome="replayed",status_class="2xx"} 2\n'));
  assert.ok(text.includes('writeguard_request_duration_seconds_bucket{le="0.005",upstream="pay",method="POST"} 3\n'));
  metrics.writeEnded();
  text = await metrics.registry.metrics();
  assert.equal(line(text, 'writeguard_writes_in_flight '), 'writeguard_writes_in_flight 0');
});

test('a failed store step is counted and rethrown; every step is timed', async () => {
  const metrics = new Metrics(() => Promise.resolve(0));
  assert.equal(await metrics.store('begin', () => Promise.resolve('ok')), 'ok');
  await assert.rejects(
    metrics.store('begin', () => Promise.reject(new Error('down'))),
    /down/,
  );
  const text = await metrics.registry.metrics();
  assert.equal(line(text, 'writeguard_store_errors_total{'), 'writeguard_store_errors_total{op="begin"} 1');
  assert.equal(line(text, 'writeguard_store_duration_seconds_count{'), 'writeguard_store_duration_seconds_count{op="begin"} 2');
});
