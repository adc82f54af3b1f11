// `Idempotency-Intent: new` starts ONE new operation, and that operation's own SDK retries (the same
// header plus a retry signal, `X-Stainless-Retry-Count` ≥ 1) join it instead of starting another
// (DESIGN §3.4). Proved by counting executions at the upstream:
// - a deliberate payment that timed out (504 outcome_unknown) and its SDK retry → 1 execution;
// - the real openai SDK with `defaultHeaders: { 'Idempotency-Intent': 'new' }`, timing out and
//   retrying against a slow upstream → 1 execution, and the SDK ends with the answer or a clear error;
// - two deliberate identical payments (each a fresh `Intent: new`, no retry signal) → both run, and
//   a later SDK retry of them runs nothing more.
// - a bare `Intent: retry` follows the latest deliberate operation, and an unmarked identical
//   re-send after it is refused as its possible duplicate (the store points the derived key at it).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { expectProblem, post } from '../helpers/problem.js';
import { slowPaymentsBehindWriteguard } from '../helpers/slow-payments.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

/** Every request is bounded: a hung answer fails the test instead of stalling it. */
const REQUEST_LIMIT_MS = 5000;
const NEW = { 'idempotency-intent': 'new' };
const NEW_SDK_RETRY = { 'idempotency-intent': 'new', 'x-stainless-retry-count': '1' };

let n = 0;
const uniquePath = (name: string) => `/v1/${name}-${process.pid}-${++n}`;

/** A 2xx replay of the stored answer, or the 502 of a write held as outcome_unknown: either way, nothing ran. */
async function expectJoined(res: Response, what: string): Promise<void> {
  if (res.status === 502) {
    await expectProblem(res, 502, 'outcome_unknown');
    return;
  }
  const text = await res.text();
  assert.ok(res.status >= 200 && res.status < 300, `${what}: expected a replay or 502 outcome_unknown, got ${res.status} ${text}`);
  assert.equal(res.headers.get('idempotent-replayed'), 'true', `${what}: a 2xx must be the replay, got ${res.status} ${text}`);
}

describe('raw fetch: a timed-out deliberate payment and its SDK retry', () => {
  const UPSTREAM_TIMEOUT_MS = 300;
  const SLOW_ANSWER_MS = 600;
  let up: CountingUpstream;
  let wg: RunningWriteguard;
  const seen = new Map<string, number>();

  before(async () => {
    // Executes on every request it receives (counted by `up.count`); the first one per path answers
    // after writeguard's timeout, later ones at once.
    up = await startUpstream((req, res) => {
      const path = req.url.split('?')[0]!;
      const nth = (seen.get(path) ?? 0) + 1;
      seen.set(path, nth);
      const answer = (): void => {
        if (res.destroyed) return;
        res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${nth}` });
        res.end(JSON.stringify({ id: `pay_${nth}`, status: 'succeeded' }));
      };
      if (nth === 1) setTimeout(answer, SLOW_ANSWER_MS);
      else answer();
    });
    wg = await startWriteguard({ upstreams: [{ name: 'pay', target: up.url, timeoutMs: UPSTREAM_TIMEOUT_MS }] });
  });
  after(async () => {
    await wg.close();
    await up.close();
  });

  test('Intent: new times out (504 outcome_unknown); its retry (Intent: new + X-Stainless-Retry-Count: 1) does not execute again', async () => {
    const path = uniquePath('payments');
    const body = '{"amount":4200,"currency":"usd","destination":"acct_1"}';

    const first = await post(`${wg.url}${path}`, body, NEW, AbortSignal.timeout(REQUEST_LIMIT_MS));
    await expectProblem(first, 504, 'outcome_unknown');
    assert.equal(up.count(path), 1, 'the deliberate payment reached the upstream once');

    // Let the upstream finish the slow answer, so the retry meets a settled world either way.
    await sleep(SLOW_ANSWER_MS - UPSTREAM_TIMEOUT_MS + 100);

    const retry = await post(`${wg.url}${path}`, body, NEW_SDK_RETRY, AbortSignal.timeout(REQUEST_LIMIT_MS));
    const status = retry.status;
    await sleep(50); // a forward made for the retry would have been counted by now
    assert.equal(up.count(path), 1, `the SDK retry of the same operation must not execute again (its answer was ${status})`);
    await expectJoined(retry, 'the SDK retry');
  });

  // A bare `Intent: retry` is a signalled retry too: it joins the latest operation of the window.
  test('Intent: retry (without Intent: new) after a timed-out Intent: new operation joins it', async () => {
    const path = uniquePath('payments');
    const body = '{"amount":4300,"currency":"usd","destination":"acct_2"}';
    await expectProblem(await post(`${wg.url}${path}`, body, NEW, AbortSignal.timeout(REQUEST_LIMIT_MS)), 504, 'outcome_unknown');
    await sleep(SLOW_ANSWER_MS - UPSTREAM_TIMEOUT_MS + 100);
    const retry = await post(`${wg.url}${path}`, body, { 'idempotency-intent': 'retry' }, AbortSignal.timeout(REQUEST_LIMIT_MS));
    const status = retry.status;
    await sleep(50);
    assert.equal(up.count(path), 1, `Intent: retry must join the operation, not run it again (its answer was ${status})`);
    await expectJoined(retry, 'Intent: retry');
  });
});

describe('the real openai SDK with defaultHeaders Idempotency-Intent: new', () => {
  const SDK_TIMEOUT_MS = 300;
  const UPSTREAM_DELAY_MS = 900; // longer than the SDK's timeout, well within writeguard's timeoutMs
  const payments = slowPaymentsBehindWriteguard(UPSTREAM_DELAY_MS, { timeoutMs: 10_000 });

  test('SDK timeout + its own retries (maxRetries 2): exactly 1 execution; the SDK gets the payment or a clear error', async () => {
    const { up, wg } = payments;
    const path = uniquePath('payments');
    const client = new OpenAI({
      baseURL: `${wg.url}/v1`,
      apiKey: 'sk-test',
      maxRetries: 2,
      timeout: SDK_TIMEOUT_MS,
      defaultHeaders: { 'Idempotency-Intent': 'new' },
    });
    const outcome = await client.post(path.slice('/v1'.length), { body: { amount: 5100, currency: 'usd', destination: 'acct_sdk' } }).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    await sleep(100); // a forward of the SDK's last, abandoned attempt would be counted by now

    const sent = up.received.filter((r) => r.url === path).map((r) => r.headers['x-stainless-retry-count']);
    assert.equal(
      up.count(path),
      1,
      `one deliberate payment, however often the SDK retried it; the upstream saw retry counts ${JSON.stringify(sent)}`,
    );

    const lines = wg.logs.responses().filter((l) => l.path === path);
    assert.ok(lines.length >= 2, 'the SDK did time out and retry');
    if (outcome.ok) {
      assert.equal((outcome.value as { id?: string }).id, 'pay_1', 'the SDK gets the one payment');
    } else {
      // Out of retries while the payment was still in flight: a writeguard answer the SDK shows, not a hang.
      assert.ok(outcome.error instanceof OpenAI.APIError && outcome.error.status === 409, `a clear error, got ${String(outcome.error)}`);
      assert.equal(outcome.error.code, 'idempotency_key_in_use');
    }
  });
});

describe('deliberate identical payments', () => {
  let up: CountingUpstream;
  let wg: RunningWriteguard;

  before(async () => {
    up = await startUpstream((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: `pay_${up.received.length}` }));
    });
    wg = await startWriteguard({ upstreams: [{ name: 'pay', target: up.url }] });
  });
  after(async () => {
    await wg.close();
    await up.close();
  });

  test('two identical payments, each a fresh Intent: new with no retry signal, both run under their own keys', async () => {
    const path = uniquePath('payments');
    const body = '{"amount":999,"currency":"usd","destination":"acct_twice"}';
    const first = await post(`${wg.url}${path}`, body, NEW, AbortSignal.timeout(REQUEST_LIMIT_MS));
    assert.equal(first.status, 201, await first.text());
    const second = await post(`${wg.url}${path}`, body, NEW, AbortSignal.timeout(REQUEST_LIMIT_MS));
    assert.equal(second.status, 201, await second.text());
    assert.equal(second.headers.get('idempotent-replayed'), null, 'the second is a payment of its own, not a replay');
    assert.notEqual(second.headers.get('idempotency-key'), first.headers.get('idempotency-key'));
    assert.equal(up.count(path), 2, 'two deliberate payments, two executions');
    const keys = new Set(up.received.filter((r) => r.url === path).map((r) => r.headers['idempotency-key']));
    assert.equal(keys.size, 2, 'each under its own upstream key');
  });

  // §3.4: a keyless write matching an operation of the window is refused 409 possible_duplicate unless
  // it is a signalled retry or Intent: new — a deliberate operation counts as one.
  test('after Intent: new payments, an unmarked identical write is a possible duplicate', async () => {
    const path = uniquePath('payments');
    const body = '{"amount":997,"currency":"usd","destination":"acct_twice"}';
    assert.equal((await post(`${wg.url}${path}`, body, NEW, AbortSignal.timeout(REQUEST_LIMIT_MS))).status, 201);
    await expectProblem(await post(`${wg.url}${path}`, body, {}, AbortSignal.timeout(REQUEST_LIMIT_MS)), 409, 'possible_duplicate');
    assert.equal(up.count(path), 1);
  });

  test('after two deliberate payments, an SDK retry (Intent: new + X-Stainless-Retry-Count: 1) runs nothing more', async () => {
    const path = uniquePath('payments');
    const body = '{"amount":998,"currency":"usd","destination":"acct_twice"}';
    for (let i = 0; i < 2; i++)
      assert.equal((await post(`${wg.url}${path}`, body, NEW, AbortSignal.timeout(REQUEST_LIMIT_MS))).status, 201);
    const retry = await post(`${wg.url}${path}`, body, NEW_SDK_RETRY, AbortSignal.timeout(REQUEST_LIMIT_MS));
    const status = retry.status;
    assert.equal(up.count(path), 2, `a retry joins an operation already made (its answer was ${status})`);
    assert.equal(status, 201, await retry.text());
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
  });
});
