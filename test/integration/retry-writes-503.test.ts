// A write answered 503 every time. A 503 is ambiguous (a load balancer answers it after the backend
// ran): writeguard re-sends only to an upstream that dedupes on the key (`upstreamHonorsKey`), always
// with that one key, and then passes the 503 back; otherwise it sends once and holds the write as
// `outcome_unknown`. Either way the answer says `x-should-retry: false` / `stripe-should-retry: false`,
// and the real openai and stripe SDKs, which retry 5xx on their own, make no further attempt.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import Stripe from 'stripe';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream, type Received, type Responder } from '../helpers/upstream.js';
import { until } from '../helpers/wait.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const overloaded: Responder = (_req, res) => {
  res.writeHead(503, { 'content-type': 'application/json', 'request-id': `req_${Math.random().toString(36).slice(2, 10)}` });
  res.end('{"error":{"type":"api_error","message":"The server is overloaded"}}');
};

let up: CountingUpstream;

before(async () => {
  up = await startUpstream(overloaded);
});
after(async () => {
  await up.close();
});

/** What the upstream receives from now on, for one call. */
function since(): () => Received[] {
  const mark = up.received.length;
  return () => up.received.slice(mark);
}

function oneKey(hits: Received[]): string {
  const keys = new Set(hits.map((r) => r.headers['idempotency-key']));
  assert.equal(keys.size, 1, `one upstream key for every attempt, saw ${[...keys].join(', ')}`);
  const [key] = keys;
  assert.equal(typeof key, 'string');
  return key as string;
}

function noSdkRetryHeaders(hits: Received[]): void {
  for (const hit of hits) assert.ok(Number(hit.headers['x-stainless-retry-count'] ?? 0) === 0, 'no attempt came from an SDK retry');
}

/** writeguard's response lines for one path (one per request the agent made), once they are written. */
async function requestsTo(wg: RunningWriteguard, path: string): Promise<number> {
  const count = (): number => wg.logs.responses().filter((l) => l.path === path).length;
  await until(() => count() > 0, { timeoutMs: 2000, intervalMs: 10 });
  await new Promise((r) => setTimeout(r, 50)); // a late second line would show too
  return count();
}

function writeguardFor(honorsKey: boolean): Promise<RunningWriteguard> {
  return startWriteguard({
    upstreams: [
      {
        name: 'api',
        target: up.url,
        idempotency: { upstreamHonorsKey: honorsKey },
        retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
      },
    ],
  });
}

describe('upstreamHonorsKey: true', () => {
  let wg: RunningWriteguard;
  before(async () => {
    wg = await writeguardFor(true);
  });
  after(async () => {
    await wg.close();
  });

  test('fetch: 3 attempts with one key, then the 503 itself with x-should-retry: false', async () => {
    const hits = since();
    const res = await post(`${wg.url}/v1/payments`, '{"amount":700}', { 'idempotency-key': 'w503-fetch-1' });
    const text = await res.text();
    assert.equal(res.status, 503, text);
    assert.equal(JSON.parse(text).error.message, 'The server is overloaded', 'the upstream answer, passed back');
    assert.equal(res.headers.get('x-writeguard-attempts'), '3');
    assert.equal(res.headers.get('x-should-retry'), 'false');
    assert.equal(res.headers.get('stripe-should-retry'), 'false');
    assert.equal(hits().length, 3);
    assert.equal(oneKey(hits()), 'w503-fetch-1');
    assert.equal(new Set(hits().map((r) => r.body.toString('utf8'))).size, 1, 'the same bytes each time');
  });

  test("openai SDK (maxRetries 2): 3 upstream hits, all writeguard's; the SDK surfaces the 503", async () => {
    const hits = since();
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${wg.url}/v1` });
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.equal(err.status, 503);
        assert.equal(err.headers?.get('x-should-retry'), 'false');
        assert.equal(err.headers?.get('x-writeguard-attempts'), '3');
        return true;
      },
    );
    assert.equal(hits().length, 3, "writeguard's 3 attempts, no SDK retry on top");
    assert.equal(await requestsTo(wg, '/v1/chat/completions'), 1, 'the SDK asked writeguard once');
    oneKey(hits());
    noSdkRetryHeaders(hits());
  });

  test("stripe SDK (maxNetworkRetries 2): 3 upstream hits with stripe-node's key; the SDK surfaces the 503", async () => {
    const hits = since();
    const stripe = new Stripe('sk_test_123', {
      host: '127.0.0.1',
      port: Number(new URL(wg.url).port),
      protocol: 'http',
      maxNetworkRetries: 2,
    });
    await assert.rejects(stripe.customers.create({ email: 'a@example.com' }), (err: unknown) => {
      assert.ok(err instanceof Stripe.errors.StripeError, String(err));
      assert.equal(err.statusCode, 503);
      assert.equal(err.headers?.['stripe-should-retry'], 'false');
      assert.equal(err.headers?.['x-writeguard-attempts'], '3');
      return true;
    });
    assert.equal(hits().length, 3, "writeguard's 3 attempts, no SDK retry on top");
    assert.equal(await requestsTo(wg, '/v1/customers'), 1, 'the SDK asked writeguard once');
    assert.match(oneKey(hits()), /^stripe-node-retry-/);
  });
});

describe('upstreamHonorsKey: false (the default)', () => {
  let wg: RunningWriteguard;
  before(async () => {
    wg = await writeguardFor(false);
  });
  after(async () => {
    await wg.close();
  });

  test('fetch: exactly 1 attempt, then 502 outcome_unknown with x-should-retry: false', async () => {
    const hits = since();
    const res = await post(`${wg.url}/v1/payments`, '{"amount":700}', { 'idempotency-key': 'w503-fetch-2' });
    assert.equal(res.headers.get('x-should-retry'), 'false');
    assert.equal(res.headers.get('stripe-should-retry'), 'false');
    assert.equal(res.headers.get('x-writeguard-attempts'), '1');
    const problem = await expectProblem(res, 502, 'outcome_unknown');
    assert.equal(problem.idempotency_key, 'w503-fetch-2');
    assert.equal(hits().length, 1);
    assert.equal(oneKey(hits()), 'w503-fetch-2');

    // The agent's own retry is held too, without a send: the write must be reconciled first.
    const again = await post(`${wg.url}/v1/payments`, '{"amount":700}', { 'idempotency-key': 'w503-fetch-2' });
    assert.equal(again.headers.get('x-should-retry'), 'false');
    await expectProblem(again, 502, 'outcome_unknown');
    assert.equal(hits().length, 1);
  });

  test('openai SDK (maxRetries 2): 1 upstream hit; the SDK surfaces the 502 and does not retry it', async () => {
    const hits = since();
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${wg.url}/v1` });
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.equal(err.status, 502);
        assert.equal(err.code, 'outcome_unknown');
        assert.equal(err.headers?.get('x-should-retry'), 'false');
        return true;
      },
    );
    assert.equal(hits().length, 1);
    assert.equal(await requestsTo(wg, '/v1/chat/completions'), 1, 'the SDK asked writeguard once');
    noSdkRetryHeaders(hits());
  });

  test('stripe SDK (maxNetworkRetries 2): 1 upstream hit; the SDK surfaces the 502 and does not retry it', async () => {
    const hits = since();
    const stripe = new Stripe('sk_test_123', {
      host: '127.0.0.1',
      port: Number(new URL(wg.url).port),
      protocol: 'http',
      maxNetworkRetries: 2,
    });
    await assert.rejects(stripe.customers.create({ email: 'b@example.com' }), (err: unknown) => {
      assert.ok(err instanceof Stripe.errors.StripeError, String(err));
      assert.equal(err.statusCode, 502);
      assert.equal(err.code, 'outcome_unknown');
      assert.equal(err.headers?.['stripe-should-retry'], 'false');
      return true;
    });
    assert.equal(hits().length, 1);
    assert.equal(await requestsTo(wg, '/v1/customers'), 1, 'the SDK asked writeguard once');
    assert.match(oneKey(hits()), /^stripe-node-retry-/);
  });
});

// Controls: pointed straight at the same upstream, both SDKs do retry a 503 on their own (2 more times),
// so the single attempts above are writeguard's signals at work, not SDK defaults.
describe('control: the SDKs straight at the upstream', () => {
  test('openai SDK: 3 hits (its own 2 retries, X-Stainless-Retry-Count 0, 1, 2)', async () => {
    const hits = since();
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${up.url}/v1` });
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.APIError);
        assert.equal(err.status, 503);
        return true;
      },
    );
    assert.deepEqual(
      hits().map((r) => r.headers['x-stainless-retry-count']),
      ['0', '1', '2'],
    );
  });

  test('stripe SDK: 3 hits with one Idempotency-Key', async () => {
    const hits = since();
    const stripe = new Stripe('sk_test_123', { host: '127.0.0.1', port: up.port, protocol: 'http', maxNetworkRetries: 2 });
    await assert.rejects(stripe.customers.create({ email: 'c@example.com' }), (err: unknown) => {
      assert.ok(err instanceof Stripe.errors.StripeError);
      assert.equal(err.statusCode, 503);
      return true;
    });
    assert.equal(hits().length, 3);
    assert.match(oneKey(hits()), /^stripe-node-retry-/);
  });
});
