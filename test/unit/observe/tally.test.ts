// Counts kept by writeguard and rendered at scrape time: the text a scrape reads is the text
// prom-client's own Counter and Histogram render for the same events, in both exposition formats.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry, type RegistryContentType } from 'prom-client';
import { TallyCounter, TallyHistogram } from '../../../src/observe/tally.js';

const BOUNDS = [0.001, 0.01, 0.1, 1];
// On a bound, below the first, past the last, and in between: `le` is inclusive.
const OBSERVED: [number, string, string][] = [
  [0.001, 'pay', 'POST'],
  [0.0004, 'pay', 'POST'],
  [0.05, 'pay', 'POST'],
  [7, 'pay', 'POST'],
  [1, 'ledger', 'PUT'],
  [0.05, 'pay', 'POST'],
];

for (const contentType of [Registry.PROMETHEUS_CONTENT_TYPE, Registry.OPENMETRICS_CONTENT_TYPE]) {
  test(`a tally renders what prom-client renders for the same events (${contentType.split(';')[0]})`, async () => {
    const [ours, theirs] = [new Registry<RegistryContentType>(), new Registry<RegistryContentType>()];
    ours.setContentType(contentType);
    theirs.setContentType(contentType);
    const family = { name: 'h_seconds', help: 'durations', labelNames: ['upstream', 'method'] };
    const histogram = new TallyHistogram({ ...family, registry: ours }, BOUNDS);
    const reference = new Histogram({ ...family, buckets: BOUNDS, registers: [theirs] });
    const counter = new TallyCounter({ name: 'c_total', help: 'answers', labelNames: ['outcome'], registry: ours });
    const referenceCounter = new Counter({ name: 'c_total', help: 'answers', labelNames: ['outcome'], registers: [theirs] });

    for (const [value, upstream, method] of OBSERVED) {
      histogram.observe(value, upstream, method);
      reference.observe({ upstream, method }, value);
    }
    for (const outcome of ['forwarded', 'replayed', 'forwarded']) {
      counter.inc(outcome);
      referenceCounter.inc({ outcome });
    }

    const text = await ours.metrics();
    assert.equal(text, await theirs.metrics());
    assert.match(text, /h_seconds_bucket\{le="0.001",upstream="pay",method="POST"\} 2\n/);
    assert.match(text, /h_seconds_bucket\{le="\+Inf",upstream="pay",method="POST"\} 5\n/);
    assert.match(text, /c_total\{outcome="forwarded"\} 2\n/);
    // A second scrape counts the same events once more only if they happened again.
    counter.inc('replayed');
    assert.match(await ours.metrics(), /c_total\{outcome="replayed"\} 2\n/);
  });
}

test('resetting the registry empties a tally histogram', async () => {
  const registry = new Registry();
  const histogram = new TallyHistogram({ name: 'h_seconds', help: 'd', labelNames: ['op'], registry }, BOUNDS);
  histogram.observe(0.5, 'begin');
  assert.match(await registry.metrics(), /h_seconds_count\{op="begin"\} 1/);
  registry.resetMetrics();
  assert.doesNotMatch(await registry.metrics(), /h_seconds_count/);
});
