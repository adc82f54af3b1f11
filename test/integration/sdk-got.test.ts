// SDK guide, got: by default got retries twice, never a POST, on 408/413/429/5xx and network errors,
// and gives up (no retry at all) when Retry-After exceeds `retry.maxRetryAfter` — which defaults to
// `timeout.request`, so a client timeout under 1 s refuses writeguard's `Retry-After: 1`. On top of
// writeguard: allow POST, retry only the statuses writeguard marks retryable (409 in use, 503 store
// unavailable), stop when it says `x-should-retry: false`, and set maxRetryAfter. Network errors and
// timeouts may be retried too: the Idempotency-Key makes the retry join the first attempt.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import got, { HTTPError } from 'got';
import { assertProblemBody } from '../helpers/problem.js';
import { slowPaymentsBehindWriteguard } from '../helpers/slow-payments.js';

/** Takes 800 ms to create a payment: longer than the client's timeout below. */
const payments = slowPaymentsBehindWriteguard(800);

/** The snippet (timeout shortened only to make the slow fake upstream time out). */
function writeguardClient(prefixUrl: string, timeoutMs = 10_000) {
  return got.extend({
    prefixUrl,
    timeout: { request: timeoutMs },
    retry: {
      limit: 4,
      methods: ['POST', 'GET'],
      statusCodes: [409, 503],
      errorCodes: ['ETIMEDOUT', 'ECONNRESET', 'ECONNREFUSED', 'EPIPE'],
      maxRetryAfter: 5_000,
      calculateDelay: ({ computedValue, error }) => (error.response?.headers['x-should-retry'] === 'false' ? 0 : computedValue),
    },
  });
}

test('got: a concurrent duplicate with the same key meets 409 in use, waits Retry-After, gets the replay', async () => {
  const api = writeguardClient(payments.wg.url);
  const pay = () => api.post('v1/payments', { json: { amount: 2000, currency: 'usd' }, headers: { 'idempotency-key': 'order-D-9' } });
  const sent = payments.up.count();

  const [a, b] = await Promise.all([pay(), pay()]);
  assert.deepEqual([a.statusCode, b.statusCode], [201, 201]);
  assert.equal(a.body, b.body);
  assert.deepEqual([a.retryCount, b.retryCount].sort(), [0, 1]);
  assert.equal(payments.up.count() - sent, 1);
});

test('got: a timed-out POST is retried with its key and gets the stored answer → one payment', async () => {
  const api = writeguardClient(payments.wg.url, 300);
  const sent = payments.up.count();
  const res = await api.post('v1/payments', { json: { amount: 2500, currency: 'usd' }, headers: { 'idempotency-key': 'order-D-10' } });

  assert.equal(res.statusCode, 201);
  assert.equal(res.headers['idempotent-replayed'], 'true');
  assert.ok(res.retryCount >= 1);
  assert.equal(payments.up.count() - sent, 1);
});

test('got stops at a 409 marked x-should-retry: false (possible_duplicate): not retried, not run twice', async () => {
  const api = writeguardClient(payments.wg.url);
  const sent = payments.up.count();
  const payment = { json: { amount: 300, currency: 'usd', note: 'keyless' } };

  await api.post('v1/payments', payment);
  await assert.rejects(api.post('v1/payments', payment), (err: unknown) => {
    assert.ok(err instanceof HTTPError);
    assert.equal(err.response.statusCode, 409);
    assert.equal(err.request.retryCount, 0);
    assertProblemBody(String(err.response.body), 'possible_duplicate');
    return true;
  });
  assert.equal(payments.up.count() - sent, 1);
});
