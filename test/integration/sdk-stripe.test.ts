// SDK guide, stripe (Node): stripe-node always sends /v1/… and has no base-path option, so the Stripe
// upstream gets a listener of its own (config/stripe.yaml) and the SDK points at it with host, port
// and protocol. stripe-node puts an Idempotency-Key on every POST — `stripe-node-retry-<uuid>`, or
// the call's `idempotencyKey` — and reuses it on its own retries (maxNetworkRetries, 2 by default;
// on connection errors, 409, 5xx and `Stripe-Should-Retry: true`, never on `Stripe-Should-Retry:
// false`). It treats a JSON body as an error only when it has an `error` member.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import Stripe from 'stripe';
import { exampleConfig } from '../helpers/example-config.js';
import { startUpstream, type CountingUpstream, type Responder } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

/** Creates PaymentIntents like Stripe, slowly enough for a concurrent duplicate to meet the first. */
let created = 0;
const stripeApi: Responder = (req, res) => {
  if (req.method !== 'POST' || req.url !== '/v1/payment_intents') {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"type":"invalid_request_error","message":"no such route"}}');
    return;
  }
  const params = new URLSearchParams(req.body.toString('utf8'));
  const id = `pi_${++created}`;
  setTimeout(() => {
    res.writeHead(200, { 'content-type': 'application/json', 'request-id': `req_${id}` });
    res.end(
      JSON.stringify({
        id,
        object: 'payment_intent',
        amount: Number(params.get('amount')),
        currency: params.get('currency'),
        status: 'requires_payment_method',
      }),
    );
  }, 300);
};

let up: CountingUpstream;
let wg: RunningWriteguard;
let port: number;

before(async () => {
  up = await startUpstream(stripeApi);
  wg = await startWriteguard(exampleConfig('stripe.yaml', up.url));
  port = Number(new URL(wg.url).port); // the stripe upstream's own listener (8790 in config/stripe.yaml)
});
after(async () => {
  await wg.close();
  await up.close();
});

test('paymentIntents.create with an idempotencyKey, called again: replayed, one PaymentIntent', async () => {
  const stripe = new Stripe('sk_test_123', { host: '127.0.0.1', port, protocol: 'http' });
  const pay = () => stripe.paymentIntents.create({ amount: 2000, currency: 'usd' }, { idempotencyKey: 'order-1001' });

  const first = await pay();
  const again = await pay();
  assert.equal(again.id, first.id);
  assert.equal(again.lastResponse.headers['idempotent-replayed'], 'true');
  assert.equal(up.count('/v1/payment_intents'), 1);
  assert.equal(up.received.at(-1)!.headers['idempotency-key'], 'order-1001', 'the key goes upstream as given');
});

test('the same key with another amount: stripe-node raises the 422, it does not return it as a result', async () => {
  const stripe = new Stripe('sk_test_123', { host: '127.0.0.1', port, protocol: 'http' });
  await stripe.paymentIntents.create({ amount: 2000, currency: 'usd' }, { idempotencyKey: 'order-1002' });
  const sent = up.count();

  await assert.rejects(
    stripe.paymentIntents.create({ amount: 9900, currency: 'usd' }, { idempotencyKey: 'order-1002' }),
    (err: unknown) => {
      assert.ok(err instanceof Stripe.errors.StripeError, String(err));
      assert.equal(err.statusCode, 422);
      assert.equal(err.code, 'idempotency_key_reuse_mismatch');
      assert.equal(err.headers?.['stripe-should-retry'], 'false');
      return true;
    },
  );
  assert.equal(up.count(), sent, 'not sent, and not retried by stripe-node');
});

test('two concurrent calls with one key: the second gets 409 in use, stripe-node retries it into the replay', async () => {
  const stripe = new Stripe('sk_test_123', { host: '127.0.0.1', port, protocol: 'http' });
  const pay = () => stripe.paymentIntents.create({ amount: 500, currency: 'eur' }, { idempotencyKey: 'order-1003' });
  const sent = up.count();

  const [a, b] = await Promise.all([pay(), pay()]);
  assert.equal(a.id, b.id);
  assert.equal(up.count() - sent, 1);
  assert.ok(wg.logs.responses().some((l) => l.code === 'idempotency_key_in_use'));
});

test('without an idempotencyKey each call gets its own key from stripe-node: two calls are two payments', async () => {
  const stripe = new Stripe('sk_test_123', { host: '127.0.0.1', port, protocol: 'http' });
  const sent = up.count();

  const a = await stripe.paymentIntents.create({ amount: 700, currency: 'usd' });
  const b = await stripe.paymentIntents.create({ amount: 700, currency: 'usd' });
  assert.notEqual(a.id, b.id);
  assert.equal(up.count() - sent, 2);
  const keys = up.received.slice(-2).map((r) => String(r.headers['idempotency-key']));
  assert.ok(
    keys.every((k) => k.startsWith('stripe-node-retry-')),
    keys.join(),
  );
});
