// SDK guide, fetch / undici: no SDK, so the agent brings the key. One Idempotency-Key per logical
// payment, the same key (and the same body) on every retry. Because the key makes a retry safe,
// the loop may retry a timeout too: while the first attempt is still running writeguard answers 409
// idempotency_key_in_use (`x-should-retry: true`, `retry-after-ms`), then the stored answer.
// Everything else it answers with `x-should-retry: false` — including 502/504 outcome_unknown,
// which is for reconciliation, not for a retry.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { Agent, RetryAgent, request } from 'undici';
import { slowPaymentsBehindWriteguard } from '../helpers/slow-payments.js';

/** Takes 800 ms to create a payment: longer than the client's timeout below. */
const payments = slowPaymentsBehindWriteguard(800, { echoRequest: true });

test('fetch with an Idempotency-Key: a timed-out attempt and its retries make one payment', async () => {
  const WRITEGUARD = payments.wg.url; // http://127.0.0.1:8787
  const TIMEOUT_MS = 300; // short only to make the slow fake upstream time out

  // --- the snippet ---
  async function pay(payment: object, key: string, attempts = 5): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await fetch(`${WRITEGUARD}/v1/payments`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify(payment),
          signal: AbortSignal.timeout(TIMEOUT_MS),
        });
        if (res.headers.get('x-should-retry') !== 'true' || attempt === attempts) return res;
        await sleep(Number(res.headers.get('retry-after-ms') ?? 500));
      } catch (err) {
        if (attempt === attempts) throw err; // timeout or connection error: same key, so safe to retry
        await sleep(250 * attempt);
      }
    }
  }
  const res = await pay({ amount: 2000, currency: 'usd', order: 'A-1' }, 'order-A-1');
  // --- end ---

  assert.equal(res.status, 201);
  assert.equal(res.headers.get('idempotent-replayed'), 'true', 'the retry got the stored answer');
  assert.equal(((await res.json()) as { id: string }).id, 'pay_1');
  assert.equal(payments.up.count('/v1/payments'), 1);
});

test('undici RetryAgent retrying POST on 409/503 only: a concurrent duplicate waits for the replay', async () => {
  // --- the snippet ---
  const dispatcher = new RetryAgent(new Agent(), { methods: ['POST'], statusCodes: [409, 503], maxRetries: 3 });
  const pay = () =>
    request(`${payments.wg.url}/v1/payments`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', 'idempotency-key': 'order-B-7' },
      body: JSON.stringify({ amount: 1500, currency: 'eur', order: 'B-7' }),
    });
  // --- end ---
  const sent = payments.up.count();

  const [a, b] = await Promise.all([pay(), pay()]);
  assert.deepEqual([a.statusCode, b.statusCode], [201, 201]);
  assert.equal(await a.body.text(), await b.body.text());
  assert.equal(payments.up.count() - sent, 1);
  assert.ok(
    payments.wg.logs.responses().some((l) => l.code === 'idempotency_key_in_use'),
    'one of them met the 409 and retried',
  );
  await dispatcher.close();
});
