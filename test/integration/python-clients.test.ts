// Python agents through writeguard, with the clients Debian packages: requests + urllib3's Retry,
// httpx, stripe-python 5.0 and tenacity (test/python/*.py, run by /usr/bin/python3; each prints one
// JSON report). Each scenario counts what a real loopback upstream executed and checks what the
// Python client finally saw. The lines between `--- the snippet ---` markers are the README's.
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { exampleConfig } from '../helpers/example-config.js';
import { startUpstream, type CountingUpstream, type Responder } from '../helpers/upstream.js';
import { until } from '../helpers/wait.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';
import { pythonClientsMissing, runPython, type SeenAnswer, type SeenFailure } from '../python/run-python.js';

// Without them every test below fails too (runPython throws the same message); this one says it first.
test("Debian's Python clients import under /usr/bin/python3", () => {
  const missing = pythonClientsMissing();
  assert.equal(missing, null, missing ?? undefined);
});

interface Fixture {
  up: CountingUpstream;
  wg: RunningWriteguard;
}

/** An upstream and writeguard in front of it (writeguard's defaults unless `config` says), closed after the test. */
async function behind(
  t: TestContext,
  responder: Responder,
  config: (target: string) => Partial<ConfigInput> & Pick<ConfigInput, 'upstreams'> = (target) => ({
    upstreams: [{ name: 'api', target }],
  }),
): Promise<Fixture> {
  const up = await startUpstream(responder);
  const wg = await startWriteguard(config(up.url));
  t.after(async () => {
    await wg.close();
    await up.close();
  });
  return { up, wg };
}

/** A payments API that counts the writes it receives, each run unless refused with a 429. `answer` says how it answers write `n`. */
function paymentsApi(answer: (n: number, res: Parameters<Responder>[1]) => void | Promise<void>) {
  let executed = 0;
  const responder: Responder = async (_req, res) => answer(++executed, res);
  return { responder, executed: () => executed };
}

function created(res: Parameters<Responder>[1], n: number): void {
  res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_pay_${n}` }).end(JSON.stringify({ id: `pay_${n}` }));
}

/** Until writeguard has told some retry 409 idempotency_key_in_use (bounded): the upstream holds its answer so a retry meets the write in flight. */
function retryMetInUse(fixture: { wg?: RunningWriteguard }): Promise<boolean> {
  const met = () => fixture.wg?.logs.responses().some((l) => l.code === 'idempotency_key_in_use') ?? false;
  return until(met, { timeoutMs: 8000, intervalMs: 10 });
}

/** writeguard's response lines, `[status, code]` each, once `n` are written (they may trail the answer by a tick). */
async function lines(wg: RunningWriteguard, n: number): Promise<[unknown, unknown][]> {
  return (await wg.logs.waitForResponses(n)).map((l) => [l.status, l.code]);
}

describe('requests + urllib3 Retry (allowed_methods=None): a keyless POST that ran, answered 503', () => {
  type Report = { final: SeenAnswer; retried_on: number[] };
  const ranThen503 = () =>
    paymentsApi((n, res) => {
      if (n > 1) return created(res, n);
      res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"overloaded"}}');
    });

  test('control, straight at the upstream: urllib3 retries the 503 and the payment runs twice', async (t) => {
    const api = ranThen503();
    const { up } = await behind(t, api.responder);
    const report = await runPython<Report>(t, 'requests_urllib3_retry.py', [up.url, '503']).report;
    assert.deepEqual(report.retried_on, [503]);
    assert.equal(report.final.status, 201);
    assert.equal(api.executed(), 2);
  });

  test('status_forcelist=[503]: writeguard answers 502 outcome_unknown, which urllib3 does not retry; 1 execution', async (t) => {
    const api = ranThen503();
    const { up, wg } = await behind(t, api.responder);
    const report = await runPython<Report>(t, 'requests_urllib3_retry.py', [wg.url, '503']).report;
    assert.deepEqual(report.retried_on, []);
    assert.equal(report.final.status, 502);
    assert.equal(report.final.code, 'outcome_unknown');
    assert.equal(report.final.should_retry, 'false');
    assert.match(report.final.key ?? '', /^wgd_/, 'a derived key, echoed');
    assert.match(String(up.received[0]!.headers['idempotency-key']), /^wg_/, 'and its upstream form sent');
    assert.equal(api.executed(), 1);
    assert.deepEqual(await lines(wg, 1), [[502, 'outcome_unknown']]);
  });

  test('status_forcelist=[502, 503, 504]: urllib3 retries the 502 once, gets 409 possible_duplicate; 1 execution', async (t) => {
    const api = ranThen503();
    const { wg } = await behind(t, api.responder);
    const report = await runPython<Report>(t, 'requests_urllib3_retry.py', [wg.url, '502,503,504']).report;
    assert.deepEqual(report.retried_on, [502]);
    assert.equal(report.final.status, 409);
    assert.equal(report.final.code, 'possible_duplicate', 'an unsignalled keyless twin of an unresolved write: refused, not sent');
    assert.equal(report.final.should_retry, 'false');
    assert.equal(api.executed(), 1);
    assert.deepEqual(await lines(wg, 2), [
      [502, 'outcome_unknown'],
      [409, 'possible_duplicate'],
    ]);
  });
});

describe('httpx with an Idempotency-Key, retried by the agent on transport errors and 5xx (3 attempts)', () => {
  type Report = { seen: (SeenAnswer | SeenFailure)[]; final: SeenAnswer | SeenFailure };
  const ranThenReset = () => paymentsApi((_n, res) => void res.socket?.destroy());

  test('control, straight at an upstream that runs it and resets: every retry runs it again (3 executions)', async (t) => {
    const api = ranThenReset();
    const { up } = await behind(t, api.responder);
    const report = await runPython<Report>(t, 'httpx_keyed_retry.py', [up.url, 'order-H-0', '5', '3']).report;
    assert.deepEqual(report.final, { error: 'RemoteProtocolError' });
    assert.equal(report.seen.length, 3);
    assert.equal(api.executed(), 3);
  });

  test('the upstream runs it and resets: 502 outcome_unknown to the first attempt and to both retries; 1 execution', async (t) => {
    const api = ranThenReset();
    const { up, wg } = await behind(t, api.responder);
    const report = await runPython<Report>(t, 'httpx_keyed_retry.py', [wg.url, 'order-H-1', '5', '3']).report;
    const seen = report.seen as SeenAnswer[];
    assert.deepEqual(
      seen.map((s) => [s.status, s.code, s.should_retry, s.wg_attempts]),
      [
        [502, 'outcome_unknown', 'false', '1'],
        [502, 'outcome_unknown', 'false', '0'],
        [502, 'outcome_unknown', 'false', '0'],
      ],
      'the retries are answered from the record, never sent',
    );
    assert.equal(api.executed(), 1);
    assert.equal(up.received[0]!.headers['idempotency-key'], 'order-H-1');
  });

  test('the client times out while the upstream runs it: ReadTimeout, 409 in use, then the stored 201; 1 execution', async (t) => {
    const fixture: { wg?: RunningWriteguard } = {};
    const api = paymentsApi(async (n, res) => {
      await retryMetInUse(fixture);
      created(res, n);
    });
    const { wg } = await behind(t, api.responder);
    fixture.wg = wg;
    const report = await runPython<Report>(t, 'httpx_keyed_retry.py', [wg.url, 'order-H-2', '0.5', '3']).report;
    const [timeout, inUse, replay] = report.seen as [SeenFailure, SeenAnswer, SeenAnswer];
    assert.equal(report.seen.length, 3);
    assert.deepEqual(timeout, { error: 'ReadTimeout' });
    assert.deepEqual([inUse.status, inUse.code, inUse.should_retry], [409, 'idempotency_key_in_use', 'true']);
    assert.deepEqual([replay.status, replay.replayed], [201, 'true']);
    assert.equal(api.executed(), 1);
    const original = (await wg.logs.waitForResponses(3)).find((l) => l.outcome === 'forwarded');
    assert.equal(original?.client_gone, true, 'the timed-out attempt ran to its end and was stored, the agent gone');
  });
});

describe('stripe-python 5.0, max_network_retries = 2, behind config/stripe.yaml', () => {
  test('Charge.create times out while the charge runs: stripe-python retries with its key, gets 409 in use, then the replay', async (t) => {
    const fixture: { wg?: RunningWriteguard } = {};
    // Stripe's API as far as the SDK needs it: POST /v1/charges, deduped on the key (upstreamHonorsKey in stripe.yaml).
    const charges = new Map<string, string>();
    const stripeApi: Responder = async (req, res) => {
      const key = String(req.headers['idempotency-key']);
      const params = new URLSearchParams(req.body.toString('utf8'));
      const body =
        charges.get(key) ??
        JSON.stringify({
          id: `ch_${charges.size + 1}`,
          object: 'charge',
          amount: Number(params.get('amount')),
          currency: params.get('currency'),
        });
      charges.set(key, body);
      await retryMetInUse(fixture);
      res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_ch' }).end(body);
    };
    const { up, wg } = await behind(t, stripeApi, (target) => exampleConfig('stripe.yaml', target));
    fixture.wg = wg;

    const report = await runPython<{ id: string; amount: number; sent_keys: string[]; final: SeenAnswer }>(t, 'stripe_charge.py', [
      wg.url,
      '0.5',
    ]).report;
    assert.deepEqual([report.id, report.amount], ['ch_1', 2000]);
    assert.deepEqual([report.final.status, report.final.replayed], [200, 'true']);
    assert.equal(report.sent_keys.length, 3, 'stripe-python made its 2 retries');
    assert.equal(new Set(report.sent_keys).size, 1, 'with one key');
    assert.match(report.sent_keys[0]!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a uuid4 of its own');
    assert.equal(up.count('/v1/charges'), 1);
    assert.equal(up.received[0]!.headers['idempotency-key'], report.sent_keys[0], 'the key stripe-python generated went upstream as given');
    assert.deepEqual(await lines(wg, 3), [
      [409, 'idempotency_key_in_use'],
      [200, null],
      [200, null],
    ]);
  });
});

describe('tenacity retrying a keyed requests POST only on x-should-retry: true', () => {
  type Report = { first: SeenAnswer[]; twin: SeenAnswer[] };
  const facts = (s: SeenAnswer) => [s.status, s.code, s.should_retry, s.wg_attempts];

  test("429 (Retry-After: 1) beyond writeguard's 3 attempts: x-should-retry false, tenacity stops; the agent's next call runs once", async (t) => {
    const rateLimited = paymentsApi((n, res) => {
      if (n > 4) return created(res, n);
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":{"code":"too_many_requests"}}');
    });
    const { up, wg } = await behind(t, rateLimited.responder, (target) => ({
      upstreams: [{ name: 'api', target, retry: { maxAttempts: 3 } }],
    }));

    const first = await runPython<Report>(t, 'tenacity_should_retry.py', [wg.url, 'order-T-1']).report;
    assert.deepEqual(first.first.map(facts), [[429, 'too_many_requests', 'false', '3']], "one tenacity attempt: the upstream's 429");
    assert.equal(first.first[0]!.retry_after, '1');
    assert.equal(up.count(), 3);

    // Nothing ran, so the key was released: the same call again waits out the cooldown inside writeguard and runs.
    const again = await runPython<Report>(t, 'tenacity_should_retry.py', [wg.url, 'order-T-1']).report;
    assert.deepEqual(again.first.map(facts), [[201, null, 'false', '2']]);
    assert.equal(up.count(), 5, 'a 4th 429, then the payment');
    assert.equal(up.received.filter((r) => r.headers['idempotency-key'] === 'order-T-1').length, 5);
  });

  test('a twin sent while the first is in flight: 409 x-should-retry true, tenacity waits retry-after-ms, gets the replay', async (t) => {
    const fixture: { wg?: RunningWriteguard } = {};
    const api = paymentsApi(async (n, res) => {
      await retryMetInUse(fixture);
      created(res, n);
    });
    const { up, wg } = await behind(t, api.responder);
    fixture.wg = wg;

    const run = runPython<Report>(t, 'tenacity_should_retry.py', [wg.url, 'order-T-2', 'twin']);
    // The twin starts once the first call has reached the upstream (it is then in flight in writeguard).
    assert.ok(await until(() => up.count() === 1, { timeoutMs: 8000, intervalMs: 10 }), 'the first call reached the upstream');
    run.child.stdin.end('go\n');
    const report = await run.report;
    assert.deepEqual(report.first.map(facts), [[201, null, null, '1']]);
    assert.deepEqual(report.twin.map(facts), [
      [409, 'idempotency_key_in_use', 'true', '0'],
      [201, null, null, '0'],
    ]);
    assert.equal(report.twin[1]!.replayed, 'true');
    assert.equal(api.executed(), 1);
  });

  test('outcome_unknown (the upstream ran it and answered 500): x-should-retry false, tenacity stops at once', async (t) => {
    const api = paymentsApi(
      (_n, res) => void res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"code":"api_error"}}'),
    );
    const { wg } = await behind(t, api.responder);
    const report = await runPython<Report>(t, 'tenacity_should_retry.py', [wg.url, 'order-T-3']).report;
    assert.deepEqual(report.first.map(facts), [[502, 'outcome_unknown', 'false', '1']]);
    assert.equal(api.executed(), 1);
    assert.deepEqual(await lines(wg, 1), [[502, 'outcome_unknown']]);
  });
});
