// writeguard's retry loop against a real loopback upstream that rate-limits: it waits as long as the
// upstream asks (Retry-After as delay-seconds or as an HTTP-date) and never sooner, then retries once
// with the same key and bytes; a wait past maxElapsedMs is not slept: the 429 goes back at once with a
// Retry-After (computed from X-RateLimit-Reset when the upstream sent only that).
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.js';
import { expectProblem, post } from '../helpers/problem.js';
import { echo, startUpstream, type CountingUpstream, type Received } from '../helpers/upstream.js';
import { eventually } from '../helpers/wait.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

type Retry = NonNullable<ConfigInput['upstreams'][number]['retry']>;

interface Rig {
  up: CountingUpstream;
  wg: RunningWriteguard;
  /** Date.now() when each upstream request arrived, in order. */
  arrivals: number[];
}

/**
 * A fresh upstream and writeguard per test (a 429 cools the agent down, so tests must not share one):
 * the upstream answers the first request with `first` and every later one as the echo upstream does.
 */
async function withRig(
  first: (req: Received, res: ServerResponse) => void,
  retry: Retry,
  body: (rig: Rig) => Promise<void>,
): Promise<void> {
  const arrivals: number[] = [];
  const up = await startUpstream((req, res) => {
    arrivals.push(Date.now());
    return arrivals.length === 1 ? first(req, res) : echo(req, res);
  });
  const wg = await startWriteguard({ upstreams: [{ name: 'api', target: up.url, retry }] });
  try {
    await body({ up, wg, arrivals });
  } finally {
    await wg.close();
    await up.close();
  }
}

function tooMany(headers: Record<string, string>): (req: Received, res: ServerResponse) => void {
  return (_req, res) => {
    res.writeHead(429, { 'content-type': 'application/json', ...headers });
    res.end('{"error":{"type":"rate_limit_error","message":"slow down"}}');
  };
}

/** An HTTP-date 1–2 s ahead of now (HTTP-dates have whole seconds), computed when the 429 is sent. */
function dateAhead(onDate: (ms: number) => void): (req: Received, res: ServerResponse) => void {
  return (req, res) => {
    const at = (Math.floor(Date.now() / 1000) + 2) * 1000;
    onDate(at);
    tooMany({ 'retry-after': new Date(at).toUTCString() })(req, res);
  };
}

const BODY = '{"amount":2500,"currency":"eur"}';

async function assertWaitedAndRetried(
  rig: Rig,
  res: Response,
  started: number,
  expected: { status: number; minGapMs: number; notBefore?: number },
): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, expected.status, text);
  assert.equal(res.headers.get('x-writeguard-attempts'), '2');
  // After writeguard retried, SDKs must not add attempts of their own.
  assert.equal(res.headers.get('x-should-retry'), 'false');
  assert.equal(res.headers.get('stripe-should-retry'), 'false');
  assert.equal(rig.up.count(), 2, 'one 429, one retry');
  const gap = rig.arrivals[1]! - rig.arrivals[0]!;
  assert.ok(gap >= expected.minGapMs, `the retry came ${gap} ms after the 429; asked ≥ ${expected.minGapMs} ms`);
  if (expected.notBefore !== undefined)
    assert.ok(rig.arrivals[1]! >= expected.notBefore, `retried ${expected.notBefore - rig.arrivals[1]!} ms before the HTTP-date`);
  // Jitter goes upward by at most 20 %: the wait is not much longer than asked either.
  assert.ok(Date.now() - started < expected.minGapMs * 1.2 + 1500, `answered after ${Date.now() - started} ms`);
}

function assertSameWriteTwice(rig: Rig, key: string): void {
  const [a, b] = rig.up.received;
  assert.equal(a!.method, 'POST');
  assert.equal(a!.headers['idempotency-key'], key, 'the agent key goes upstream');
  assert.equal(b!.headers['idempotency-key'], key, 'the retry carries the same key');
  assert.equal(b!.body.toString('utf8'), a!.body.toString('utf8'), 'and the same bytes');
  assert.equal(a!.body.toString('utf8'), BODY);
}

test('write: 429 with Retry-After: 1, then 201 → the agent gets the 201 after ≥ 1 s; 2 attempts, one key', async () => {
  await withRig(tooMany({ 'retry-after': '1' }), {}, async (rig) => {
    const started = Date.now();
    const res = await post(`${rig.wg.url}/v1/payments`, BODY, { 'idempotency-key': 'rl-write-1' });
    await assertWaitedAndRetried(rig, res, started, { status: 201, minGapMs: 1000 });
    assertSameWriteTwice(rig, 'rl-write-1');

    // Settled: the agent's own retry is replayed, not sent.
    const again = await post(`${rig.wg.url}/v1/payments`, BODY, { 'idempotency-key': 'rl-write-1' });
    assert.equal(again.status, 201);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(rig.up.count(), 2);
  });
});

test('read: 429 with Retry-After: 1, then 200 → the agent gets the 200 after ≥ 1 s; 2 attempts', async () => {
  await withRig(tooMany({ 'retry-after': '1' }), {}, async (rig) => {
    const started = Date.now();
    const res = await fetch(`${rig.wg.url}/v1/payments/pay_1`);
    await assertWaitedAndRetried(rig, res, started, { status: 200, minGapMs: 1000 });
    assert.deepEqual(
      rig.up.received.map((r) => `${r.method} ${r.url}`),
      ['GET /v1/payments/pay_1', 'GET /v1/payments/pay_1'],
    );
  });
});

test('write: 429 with Retry-After as an HTTP-date 1–2 s ahead → retried no sooner than that date', async () => {
  let at = 0;
  await withRig(
    dateAhead((ms) => (at = ms)),
    {},
    async (rig) => {
      const started = Date.now();
      const res = await post(`${rig.wg.url}/v1/payments`, BODY, { 'idempotency-key': 'rl-date-1' });
      await assertWaitedAndRetried(rig, res, started, { status: 201, minGapMs: 1000, notBefore: at });
      assertSameWriteTwice(rig, 'rl-date-1');
    },
  );
});

test('read: 429 with Retry-After as an HTTP-date 1–2 s ahead → retried no sooner than that date', async () => {
  let at = 0;
  await withRig(
    dateAhead((ms) => (at = ms)),
    {},
    async (rig) => {
      const started = Date.now();
      const res = await fetch(`${rig.wg.url}/v1/balance`);
      await assertWaitedAndRetried(rig, res, started, { status: 200, minGapMs: 1000, notBefore: at });
    },
  );
});

test('read: another request of the same agent during the 1 s wait waits out the cooldown, then goes once', async () => {
  await withRig(tooMany({ 'retry-after': '1' }), {}, async (rig) => {
    const first = fetch(`${rig.wg.url}/v1/balance`);
    await eventually(() => rig.up.count() > 0, 5000, { what: 'the first request to reach the upstream', intervalMs: 5 });
    await new Promise((r) => setTimeout(r, 200));
    const second = await fetch(`${rig.wg.url}/v1/payments/pay_2`);
    assert.equal(second.status, 200, await second.text());
    assert.equal(second.headers.get('x-writeguard-attempts'), '1', 'it waited before its first attempt instead of meeting the 429');
    const res = await first;
    assert.equal(res.status, 200, await res.text());
    assert.equal(res.headers.get('x-writeguard-attempts'), '2');
    assert.equal(rig.up.count(), 3);
    for (const at of rig.arrivals.slice(1))
      assert.ok(at - rig.arrivals[0]! >= 1000, `a request reached the upstream ${at - rig.arrivals[0]!} ms after the 429`);
  });
});

/** The 429 passed back at once, untouched but for a Retry-After; the agent stays cooled down (capped). */
async function assertPassedBackAtOnce(rig: Rig, res: Response, started: number, retryAfter: (value: number) => void): Promise<void> {
  const elapsed = Date.now() - started;
  const text = await res.text();
  assert.equal(res.status, 429, text);
  assert.ok(elapsed < 1000, `answered after ${elapsed} ms: the wait was slept`);
  assert.equal(JSON.parse(text).error.type, 'rate_limit_error', 'the upstream body, not a problem');
  assert.equal(res.headers.get('x-writeguard-attempts'), '1');
  retryAfter(Number(res.headers.get('retry-after')));
  assert.equal(rig.up.count(), 1, 'no retry was sent');
}

test('write: Retry-After: 120 with maxElapsedMs 20 s → the 429 comes back at once with Retry-After: 120', async () => {
  await withRig(tooMany({ 'retry-after': '120' }), { maxElapsedMs: 20_000 }, async (rig) => {
    const started = Date.now();
    const res = await post(`${rig.wg.url}/v1/payments`, BODY, { 'idempotency-key': 'rl-long-1' });
    await assertPassedBackAtOnce(rig, res, started, (s) => assert.equal(s, 120));

    // The agent's upstream now cools down, capped at maxCooldownSec (60 s): refused without a send.
    const next = await fetch(`${rig.wg.url}/v1/balance`);
    await expectProblem(next, 429, 'rate_limited');
    const cooled = Number(next.headers.get('retry-after'));
    assert.ok(cooled >= 59 && cooled <= 60, `Retry-After ${cooled}: the cooldown is capped at maxCooldownSec`);
    assert.equal(rig.up.count(), 1);
  });
});

test('read: Retry-After: 120 with maxElapsedMs 20 s → the 429 comes back at once with Retry-After: 120', async () => {
  await withRig(tooMany({ 'retry-after': '120' }), { maxElapsedMs: 20_000 }, async (rig) => {
    const started = Date.now();
    const res = await fetch(`${rig.wg.url}/v1/balance`);
    await assertPassedBackAtOnce(rig, res, started, (s) => assert.equal(s, 120));
  });
});

test('write: only X-RateLimit-Reset (epoch seconds, 5 min ahead) → the 429 at once with a computed Retry-After', async () => {
  await withRig(
    (req, res) =>
      tooMany({
        'x-ratelimit-limit': '10',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 300),
      })(req, res),
    {},
    async (rig) => {
      const started = Date.now();
      const res = await post(`${rig.wg.url}/v1/payments`, BODY, { 'idempotency-key': 'rl-reset-1' });
      await assertPassedBackAtOnce(rig, res, started, (s) => assert.ok(s >= 298 && s <= 300, `Retry-After ${s}, expected ~300`));
      assert.equal(res.headers.get('x-ratelimit-reset') !== null, true, 'the upstream headers pass through');
    },
  );
});

test('read: only X-RateLimit-Reset (epoch seconds, 5 min ahead) → the 429 at once with a computed Retry-After', async () => {
  await withRig(
    (req, res) => tooMany({ 'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 300) })(req, res),
    {},
    async (rig) => {
      const started = Date.now();
      const res = await fetch(`${rig.wg.url}/v1/balance`);
      await assertPassedBackAtOnce(rig, res, started, (s) => assert.ok(s >= 298 && s <= 300, `Retry-After ${s}, expected ~300`));
    },
  );
});

// BUG (src/proxy/read.ts, onRetry): the answer's body is dumped as soon as a retry is decided, before the
// wait; when a shutdown aborts the wait, the loop returns that same answer ('halted') and the agent gets
// the 429 with an empty body (content-length: 0) instead of the upstream's error body.
test("read: a shutdown during the wait answers at once with the upstream's 429, body intact", async () => {
  const body = '{"error":{"type":"rate_limit_error","message":"slow down"}}';
  const up = await startUpstream((_req, res) => {
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '5' });
    res.end(body);
  });
  const wg = await startWriteguard({ upstreams: [{ name: 'api', target: up.url }] });
  try {
    const started = Date.now();
    // reset: the connection closes after the answer, so the shutdown does not wait for it to idle out.
    const pending = request(`${wg.url}/v1/balance`, { reset: true });
    await eventually(() => up.count() > 0, 5000, { what: 'the request to reach the upstream', intervalMs: 5 });
    await new Promise((r) => setTimeout(r, 100));
    const closing = wg.close();
    const res = await pending;
    const text = await res.body.text();
    assert.ok(Date.now() - started < 1000, 'the wait was cut short by the shutdown');
    assert.equal(res.statusCode, 429);
    assert.equal(res.headers['retry-after'], '5');
    assert.equal(text, body);
    await closing;
  } finally {
    await wg.close().catch(() => undefined);
    await up.close();
  }
});
