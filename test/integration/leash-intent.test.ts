// Intent (DESIGN §10.1): what a write means, whatever its wording. A reworded, reordered or re-keyed
// re-send of the same payment is refused 409 possible_duplicate; `Idempotency-Intent: new` makes a
// deliberate second one; a signalled SDK retry joins; numbers count exactly as written; `keyed: off`
// leaves client keys alone; an upstream 4xx frees the intent, an unknown outcome keeps it; the window
// ends. Every claim is counted at the upstream: executions, not answers.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const FIELDS = ['body:amount', 'body:currency', 'body:destination'];
const PAY = '/v1/payments';
const TRANSFERS = '/v1/transfers'; // keyed: off
const QUICK = '/v1/quick'; // windowSec: 1

let up: CountingUpstream;
let wg: RunningWriteguard;
/** Statuses the upstream answers next, in order; 201 when empty. It executes every request it receives. */
let statuses: number[] = [];
let n = 0;

before(async () => {
  up = await startUpstream((_req, res) => {
    const status = statuses.shift() ?? 201;
    const body =
      status === 201 ? { id: `pay_${up.received.length}` } : { error: { code: status === 402 ? 'card_declined' : 'server_error' } };
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}` });
    res.end(JSON.stringify(body));
  });
  wg = await startWriteguard({
    upstreams: [
      {
        name: 'pay',
        target: up.url,
        idempotency: { missing: 'derive' },
        intent: { fields: FIELDS, windowSec: 600, keyed: 'guard' },
        routes: [
          { match: `POST ${TRANSFERS}`, intent: { fields: FIELDS, keyed: 'off' } },
          { match: `POST ${QUICK}`, intent: { fields: FIELDS, windowSec: 1 } },
        ],
      },
    ],
  });
});
after(async () => {
  await wg?.close();
  await up?.close();
});

type Wording = { amount?: string; memo?: string; reorder?: boolean };
/** A payment of its own (a destination no other test uses), as JSON text with free text and member order chosen. */
function payment(): (wording?: Wording) => string {
  const destination = `acct_${process.pid}_${++n}`;
  return ({ amount = '2450', memo = 'Invoice 42 for the March order', reorder = false }: Wording = {}) => {
    const members = [`"amount":${amount}`, '"currency":"usd"', `"destination":"${destination}"`, `"description":"${memo}"`];
    return `{${(reorder ? members.reverse() : members).join(',')}}`;
  };
}

const send = (path: string, body: string, headers: Record<string, string> = {}): Promise<Response> =>
  post(`${wg.url}${path}`, body, headers, AbortSignal.timeout(5000));
const key = (name: string): Record<string, string> => ({ 'idempotency-key': `${name}-${process.pid}-${++n}` });

async function expect201(res: Response): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 201, text);
  assert.equal(res.headers.get('idempotent-replayed'), null, `a new execution, not a replay: ${text}`);
}

test('the same payment reworded, reordered or under a fresh Idempotency-Key: 1 execution, the rest 409 possible_duplicate', async () => {
  const body = payment();
  const base = up.count(PAY);
  await expect201(await send(PAY, body()));
  const sentKey = up.received.at(-1)!.headers['idempotency-key'];
  const resends: Array<[string, Response]> = [
    ['reworded', await send(PAY, body({ memo: 'Paying the March invoice (#42), thanks!' }))],
    ['reordered', await send(PAY, body({ reorder: true }))],
    ['fresh key', await send(PAY, body(), key('fresh'))],
  ];
  for (const [what, res] of resends) {
    const problem = await expectProblem(res, 409, 'possible_duplicate');
    assert.match(problem.detail, /Idempotency-Intent: new/, `${what}: the detail names the header for a deliberate second payment`);
  }
  assert.equal(up.count(PAY) - base, 1, 'one payment, however it was re-sent');
  // The keyed re-send names the operation it duplicates: the key the upstream received.
  const keyed = await expectProblem(await send(PAY, body({ memo: 'again' }), key('fresh2')), 409, 'possible_duplicate');
  assert.equal((keyed as unknown as { duplicate_of: string }).duplicate_of, sentKey);
  assert.equal(up.count(PAY) - base, 1);
});

test('Idempotency-Intent: new with a new client key: a second execution', async () => {
  const body = payment();
  const base = up.count(PAY);
  await expect201(await send(PAY, body(), key('a')));
  await expect201(await send(PAY, body(), { ...key('b'), 'idempotency-intent': 'new' }));
  assert.equal(up.count(PAY) - base, 2);
});

test('Idempotency-Intent: new on a keyless write: a second execution under a key of its own', async () => {
  const body = payment();
  const base = up.count(PAY);
  const first = await send(PAY, body());
  await expect201(first.clone());
  const second = await send(PAY, body(), { 'idempotency-intent': 'new' });
  assert.notEqual(second.headers.get('idempotency-key'), first.headers.get('idempotency-key'));
  await expect201(second);
  assert.equal(up.count(PAY) - base, 2);
});

test('a signalled SDK retry (X-Stainless-Retry-Count: 1) of a keyless payment with changed free text joins it', async () => {
  const body = payment();
  const base = up.count(PAY);
  const first = await send(PAY, body());
  const firstText = await first.text();
  assert.equal(first.status, 201, firstText);
  const retry = await send(PAY, body({ memo: 'retrying the March invoice' }), { 'x-stainless-retry-count': '1' });
  const text = await retry.text();
  assert.equal(retry.status, 201, text);
  assert.equal(retry.headers.get('idempotent-replayed'), 'true');
  assert.equal(text, firstText, "the first execution's answer");
  assert.equal(up.count(PAY) - base, 1);
});

test('keyed: key A runs; the same intent under key B is 409 duplicate_of A; key A again replays', async () => {
  const body = payment();
  const a = key('A');
  const base = up.count(PAY);
  await expect201(await send(PAY, body(), a));
  const problem = await expectProblem(await send(PAY, body({ memo: 'other words' }), key('B')), 409, 'possible_duplicate');
  assert.equal((problem as unknown as { duplicate_of: string }).duplicate_of, a['idempotency-key']);
  assert.match(problem.detail, new RegExp(`Idempotency-Key ${a['idempotency-key']}`), 'the detail names the key that gets the result');
  const again = await send(PAY, body(), a);
  assert.equal(again.status, 201, await again.text());
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.equal(up.count(PAY) - base, 1);
});

test('numbers exactly as written: amount "24.50" and 24.5 are two intents (2 executions)', async () => {
  const body = payment();
  const base = up.count(PAY);
  await expect201(await send(PAY, body({ amount: '"24.50"' })));
  await expect201(await send(PAY, body({ amount: '24.5' })));
  assert.equal(up.count(PAY) - base, 2);
});

test('numbers exactly as written: amount 24.50 and 24.5 (both JSON numbers) are two intents', async () => {
  const body = payment();
  const base = up.count(PAY);
  await expect201(await send(PAY, body({ amount: '24.50' })));
  await expect201(await send(PAY, body({ amount: '24.5' })));
  assert.equal(up.count(PAY) - base, 2);
});

test('keyed: off on a route: keyed writes of one intent under new keys both run; keyless ones are still guarded', async () => {
  const keyed = payment();
  const base = up.count(TRANSFERS);
  await expect201(await send(TRANSFERS, keyed(), key('off-a')));
  await expect201(await send(TRANSFERS, keyed({ memo: 'reworded' }), key('off-b')));
  assert.equal(up.count(TRANSFERS) - base, 2);
  const keyless = payment();
  await expect201(await send(TRANSFERS, keyless()));
  await expectProblem(await send(TRANSFERS, keyless({ memo: 'reworded', reorder: true })), 409, 'possible_duplicate');
  assert.equal(up.count(TRANSFERS) - base, 3);
});

test('an upstream 4xx refusal (402 card_declined) frees the intent: a fresh key with the same intent then runs', async () => {
  const body = payment();
  const base = up.count(PAY);
  statuses = [402];
  const declined = await send(PAY, body(), key('declined'));
  assert.equal(declined.status, 402, await declined.text());
  await expect201(await send(PAY, body(), key('after-decline')));
  assert.equal(up.count(PAY) - base, 2);
});

test('an upstream 5xx left outcome_unknown keeps the intent: a fresh key with the same intent is 409', async () => {
  const body = payment();
  const base = up.count(PAY);
  statuses = [500];
  await expectProblem(await send(PAY, body(), key('broken')), 502, 'outcome_unknown');
  const dup = await expectProblem(await send(PAY, body(), key('after-broken')), 409, 'possible_duplicate');
  assert.match(dup.detail, /unknown outcome/);
  assert.equal(up.count(PAY) - base, 1);
  statuses = [];
});

test('a short window (windowSec 1): once it has passed, a fresh key with the same intent runs', async () => {
  const body = payment();
  const base = up.count(QUICK);
  await expect201(await send(QUICK, body(), key('w1')));
  await expectProblem(await send(QUICK, body(), key('w2')), 409, 'possible_duplicate');
  await sleep(1_300);
  await expect201(await send(QUICK, body(), key('w3')));
  assert.equal(up.count(QUICK) - base, 2);
});
