// SDK guide, axios + axios-retry: axios-retry by default retries network errors on idempotent
// methods only (not POST) and reads Retry-After. On top of writeguard, retry POSTs on exactly the
// two answers writeguard marks retryable — 409 idempotency_key_in_use and 503 store_unavailable,
// both with `x-should-retry: true` — and keep the Idempotency-Key header identical across retries
// (axios-retry re-sends the same config, so a key set per request stays).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import axios, { isAxiosError } from 'axios';
import axiosRetry from 'axios-retry';
import { assertProblemBody } from '../helpers/problem.js';
import { slowPaymentsBehindWriteguard } from '../helpers/slow-payments.js';

const payments = slowPaymentsBehindWriteguard(400);

/** The snippet: an axios instance for writeguard whose retries are writeguard's retryable answers. */
function writeguardClient(baseURL: string, onRetry?: () => void) {
  const api = axios.create({ baseURL, timeout: 10_000 });
  axiosRetry(api, {
    retries: 3,
    retryCondition: (err) => [409, 503].includes(err.response?.status ?? 0) && err.response?.headers['x-should-retry'] === 'true',
    retryDelay: axiosRetry.exponentialDelay, // at least the server's Retry-After
    ...(onRetry === undefined ? {} : { onRetry }),
  });
  return api;
}

test('axios-retry on 409/503: a concurrent duplicate with the same key is retried into the replay → one payment', async () => {
  let retries = 0;
  const api = writeguardClient(payments.wg.url, () => retries++);
  const pay = () => api.post('/v1/payments', { amount: 2000, currency: 'usd' }, { headers: { 'Idempotency-Key': 'order-C-3' } });

  const [a, b] = await Promise.all([pay(), pay()]);
  assert.deepEqual([a.status, b.status], [201, 201]);
  assert.deepEqual(a.data, b.data);
  assert.equal(payments.up.count('/v1/payments'), 1);
  assert.equal(retries, 1, 'the duplicate met 409 in use once, then got the replay');
  assert.ok([a, b].some((r) => r.headers['idempotent-replayed'] === 'true'));
});

test('a 409 marked x-should-retry: false (possible_duplicate) is not retried', async () => {
  let retries = 0;
  const api = writeguardClient(payments.wg.url, () => retries++);
  const sent = payments.up.count();
  const body = { amount: 900, currency: 'usd', note: 'keyless' };

  await api.post('/v1/payments', body);
  await assert.rejects(api.post('/v1/payments', body), (err: unknown) => {
    assert.ok(isAxiosError(err));
    assert.equal(err.response?.status, 409);
    assertProblemBody(err.response?.data, 'possible_duplicate');
    return true;
  });
  assert.equal(retries, 0);
  assert.equal(payments.up.count() - sent, 1);
});
