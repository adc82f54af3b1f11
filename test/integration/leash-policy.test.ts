// Allow-lists on what a write does (DESIGN §10.3): a recipient or currency outside the list, or a
// missing field, is refused 403 with the rule's code before anything is claimed or sent — counted
// at the upstream: 0 executions — and an allowed write under the same key then runs once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let up: CountingUpstream;
let wg: RunningWriteguard;
let n = 0;
const PATH = '/v1/payments';

before(async () => {
  up = await startUpstream();
  wg = await startWriteguard({
    upstreams: [
      {
        name: 'pay',
        target: up.url,
        policy: [
          { match: 'POST /v1/payments', field: 'body:destination', in: ['acct_1', 'acct_2'], code: 'recipient_not_allowed' },
          { match: ['POST /v1/payments'], field: 'body:currency', in: ['usd', 'eur'], code: 'asset_not_allowed' },
        ],
        // A route's own rule applies to that route's writes (no match of its own needed).
        routes: [{ match: 'POST /v1/payouts', policy: [{ field: 'body:rail', in: ['ach'] }] }],
      },
    ],
  });
});
after(async () => {
  await wg.close();
  await up.close();
});

test('a recipient outside the list: 403 recipient_not_allowed, not retried by SDKs, nothing sent; the same key then runs once with an allowed one', async () => {
  const key = `pol-${process.pid}-${++n}`;
  const before = up.count(PATH);
  const refused = await post(`${wg.url}${PATH}`, '{"amount":100,"currency":"usd","destination":"acct_evil"}', { 'idempotency-key': key });
  assert.equal(refused.headers.get('x-should-retry'), 'false');
  const problem = await expectProblem(refused, 403, 'recipient_not_allowed');
  assert.equal(problem.retry_strategy, 'no_retry');
  assert.match(problem.detail, /acct_evil/);
  assert.equal(up.count(PATH), before, 'nothing reached the upstream');
  // Nothing was claimed: the same key with an allowed recipient is a new write, not a mismatch.
  const allowed = await post(`${wg.url}${PATH}`, '{"amount":100,"currency":"usd","destination":"acct_1"}', { 'idempotency-key': key });
  assert.equal(allowed.status, 201, await allowed.text());
  assert.equal(up.count(PATH), before + 1);
});

test('a currency outside the list: 403 asset_not_allowed; a keyless write too', async () => {
  const before = up.count(PATH);
  await expectProblem(
    await post(`${wg.url}${PATH}`, '{"amount":5,"currency":"btc","destination":"acct_2"}', { 'idempotency-key': `pol-c-${++n}` }),
    403,
    'asset_not_allowed',
  );
  await expectProblem(await post(`${wg.url}${PATH}`, '{"amount":6,"currency":"btc","destination":"acct_2"}'), 403, 'asset_not_allowed');
  assert.equal(up.count(PATH), before);
});

test('a missing field, or a body that is not JSON, is refused; other routes are not checked', async () => {
  const before = up.count(PATH);
  await expectProblem(
    await post(`${wg.url}${PATH}`, '{"amount":5,"currency":"usd"}', { 'idempotency-key': `pol-m-${++n}` }),
    403,
    'recipient_not_allowed',
  );
  await expectProblem(
    await post(`${wg.url}${PATH}`, 'amount=5&currency=usd', {
      'content-type': 'application/x-www-form-urlencoded',
      'idempotency-key': `pol-f-${++n}`,
    }),
    403,
    'recipient_not_allowed',
  );
  assert.equal(up.count(PATH), before);
  const other = await post(`${wg.url}/v1/refunds`, '{"amount":5}', { 'idempotency-key': `pol-o-${++n}` });
  assert.equal(other.status, 201, await other.text());
});

test('every refusal is a response line with its code', async () => {
  await post(`${wg.url}${PATH}`, '{"amount":1,"currency":"usd","destination":"nobody"}', { 'idempotency-key': `pol-l-${++n}` }).then((r) =>
    r.arrayBuffer(),
  );
  const lines = await wg.logs.waitForResponses(1);
  const line = lines.findLast((l) => l.code === 'recipient_not_allowed');
  assert.equal(line?.status, 403);
  assert.equal(line?.outcome, 'rejected');
  assert.equal(line?.attempts, 0);
});

test("a route entry's rule applies to its writes: policy_violation by default, counted by code", async () => {
  const before = up.count('/v1/payouts');
  await expectProblem(
    await post(`${wg.url}/v1/payouts`, '{"amount":5,"rail":"wire"}', { 'idempotency-key': `pol-r-${++n}` }),
    403,
    'policy_violation',
  );
  assert.equal(up.count('/v1/payouts'), before);
  const ok = await post(`${wg.url}/v1/payouts`, '{"amount":5,"rail":"ach"}', { 'idempotency-key': `pol-r-${++n}` });
  assert.equal(ok.status, 201, await ok.text());
  assert.equal(up.count('/v1/payouts'), before + 1);
  const metrics = await (await fetch(`${wg.adminUrl}/metrics`)).text();
  assert.match(metrics, /writeguard_leash_refusals_total\{upstream="pay",code="policy_violation"\} 1/);
  assert.match(metrics, /writeguard_leash_refusals_total\{upstream="pay",code="recipient_not_allowed"\} [1-9]/);
});
