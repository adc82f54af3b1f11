// Budgets (DESIGN §10.2): spend and count caps checked and reserved with the claim. Amounts are read
// exactly; a write over a budget is refused 403 limit_exceeded before anything is sent; a hold is
// spent on 2xx, released on proof nothing moved (429, a 4xx refusal, an operator's not_executed),
// kept while the outcome is unknown; budgets are per agent. Counted at the upstream and on GET /budgets.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectProblem, post, type Problem } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';
import { until } from '../helpers/wait.js';

const TOKEN = 'admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const money = (name: string, path: string, limit: number, over: Record<string, unknown> = {}) => ({
  name,
  match: `POST ${path}`,
  amount: 'body:amount',
  limit,
  period: 'day' as const,
  ...over,
});

interface Row {
  agent: string;
  budget: string;
  period: string;
  limit: number;
  spent: number;
  held: number;
  left: number;
  reset: string | null;
}
type LimitProblem = { budget: string; limit: number; left: number; reset: string | null; detail: string };

let up: CountingUpstream;
let wg: RunningWriteguard;
let n = 0;

/** The upstream executes every request; `scenario` in the body picks its answer (a hang never answers). */
before(async () => {
  up = await startUpstream((req, res) => {
    const scenario = (JSON.parse(req.body.toString('utf8') || '{}') as { scenario?: string }).scenario ?? '201';
    if (scenario === 'hang') return;
    const status = Number(scenario);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(status < 300 ? { id: `pay_${up.received.length}` } : { error: { code: `upstream_${status}` } }));
  });
  wg = await startWriteguard({
    admin: { token: TOKEN },
    budgets: [
      money('cents', '/v1/charges', 1_000_000, { scale: 2 }),
      money('daily-usd', '/v1/payments', 1000),
      money('refills', '/v1/refills', 300),
      money('holds', '/v1/holds', 1_000_000),
      money('topups', '/v1/topups', 100),
      { name: 'per-minute', match: 'POST /v1/orders', count: 3, period: 'minute' },
      money('per-write', '/v1/payouts', 500, { period: 'write' }),
      money('usd-only', '/v1/fx', 150, { currency: { field: 'body:currency', equals: 'usd' } }),
    ],
    upstreams: [
      {
        name: 'pay',
        target: up.url,
        timeoutMs: 300,
        idempotency: { leaseMs: 2000 },
        retry: { maxAttempts: 1, maxCooldownSec: 0 },
      },
    ],
  });
});
after(async () => {
  await wg?.close();
  await up?.close();
});

const key = (): Record<string, string> => ({ 'idempotency-key': `bud-${process.pid}-${++n}` });
const write = (path: string, body: object | string, headers: Record<string, string> = key(), on = wg): Promise<Response> =>
  post(`${on.url}${path}`, typeof body === 'string' ? body : JSON.stringify(body), headers, AbortSignal.timeout(5000));

async function budget(name: string, agent = 'default', on = wg): Promise<Row> {
  const res = await fetch(`${on.adminUrl}/budgets?agent=${agent}`, { headers: AUTH, signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  const row = ((await res.json()) as { budgets: Row[] }).budgets.find((r) => r.budget === name);
  assert.ok(row, `budget ${name} listed`);
  return row;
}

/** The leash refusals this file got from `wg`, by code: each must be a response line (last test). */
const tally = new Map<string, number>();
async function refusal(res: Response, status: number, code: string): Promise<Problem> {
  const problem = await expectProblem(res, status, code);
  tally.set(code, (tally.get(code) ?? 0) + 1);
  return problem;
}

/** Resolves the dead letter of the write the upstream received under `upstreamKey` as not executed (admin API). */
async function resolveNotExecuted(upstreamKey: string): Promise<void> {
  const list = await fetch(`${wg.adminUrl}/dead-letters`, { headers: AUTH, signal: AbortSignal.timeout(5000) });
  const letters = ((await list.json()) as { dead_letters: Array<{ id: string; epoch: number; upstream_key: string }> }).dead_letters;
  const letter = letters.find((d) => d.upstream_key === upstreamKey);
  assert.ok(letter, 'listed as a dead letter');
  const resolved = await fetch(`${wg.adminUrl}/dead-letters/${letter.id}/resolve`, {
    method: 'POST',
    body: JSON.stringify({ outcome: 'not_executed', epoch: letter.epoch }),
    headers: { 'content-type': 'application/json', ...AUTH },
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(resolved.status, 200, await resolved.text());
}

async function expect2xx(res: Response): Promise<void> {
  assert.ok(res.status >= 200 && res.status < 300, `${res.status} ${await res.text()}`);
}

test('an amount "24.50" at scale 2 spends 2450', async () => {
  const base = up.count('/v1/charges');
  await expect2xx(await write('/v1/charges', '{"amount":"24.50","currency":"usd"}'));
  assert.equal(up.count('/v1/charges') - base, 1);
  assert.deepEqual(await budget('cents').then(({ spent, held }) => ({ spent, held })), { spent: 2450, held: 0 });
});

test('malformed amounts ("24.505", -1, missing, 1e3, 30 digits) → 400 amount_invalid, nothing sent, nothing spent', async () => {
  const before = await budget('cents');
  const base = up.count('/v1/charges');
  for (const amount of ['"24.505"', '-1', null, '1e3', '123456789012345678901234567890']) {
    const body = amount === null ? '{"currency":"usd"}' : `{"amount":${amount},"currency":"usd"}`;
    const problem = await refusal(await write('/v1/charges', body), 400, 'amount_invalid');
    assert.match(problem.detail, /body:amount/, body);
  }
  assert.equal(up.count('/v1/charges') - base, 0);
  assert.deepEqual(await budget('cents'), before);
});

test('20 concurrent keyed writes of 70 against 1000: exactly 14 run, 6 get limit_exceeded naming the budget', async () => {
  const answers = await Promise.all(Array.from({ length: 20 }, () => write('/v1/payments', { amount: 70, currency: 'usd' })));
  const refused = answers.filter((r) => r.status === 403);
  assert.equal(answers.filter((r) => r.status === 201).length, 14);
  assert.equal(refused.length, 6);
  assert.equal(up.count('/v1/payments'), 14);
  const now = new Date();
  const midnight = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)).toISOString();
  for (const res of refused) {
    const problem = (await refusal(res, 403, 'limit_exceeded')) as unknown as LimitProblem & { retry_strategy: string };
    assert.equal(problem.retry_strategy, 'no_retry');
    assert.deepEqual([problem.budget, problem.limit, problem.left, problem.reset], ['daily-usd', 1000, 20, midnight]);
  }
  const row = await budget('daily-usd');
  assert.deepEqual([row.spent, row.held, row.left, row.reset], [980, 0, 20, midnight]);
  const metrics = await (await fetch(`${wg.adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  assert.match(metrics, /^writeguard_budget_refusals_total\{budget="daily-usd"\} 6$/m);
  assert.match(metrics, /^writeguard_leash_refusals_total\{upstream="pay",code="limit_exceeded"\} [1-9]/m);
});

test('retries of admitted keys replay, even with the budget spent: never reserved twice', async () => {
  const keys = [key(), key(), key()];
  for (const k of keys) await expect2xx(await write('/v1/refills', { amount: 100 }, k));
  assert.equal((await budget('refills')).left, 0);
  for (const k of keys) {
    const again = await write('/v1/refills', { amount: 100 }, k);
    await expect2xx(again.clone());
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
  }
  assert.equal(up.count('/v1/refills'), 3);
  const row = await budget('refills');
  assert.deepEqual([row.spent, row.held], [300, 0]);
});

test('an upstream 429 (nothing ran) releases the hold', async () => {
  const base = up.count('/v1/holds');
  const before = await budget('holds');
  const res = await write('/v1/holds', { amount: 400, scenario: '429' });
  assert.equal(res.status, 429, await res.text());
  assert.equal(up.count('/v1/holds') - base, 1, 'not retried by writeguard');
  const row = await budget('holds');
  assert.deepEqual([row.spent, row.held], [before.spent, 0]);
});

test('an upstream 400 or 402 refusal releases the hold', async () => {
  const base = up.count('/v1/holds');
  const before = await budget('holds');
  for (const status of ['400', '402']) {
    const res = await write('/v1/holds', { amount: 500, scenario: status });
    assert.equal(String(res.status), status, await res.text());
  }
  assert.equal(up.count('/v1/holds') - base, 2);
  const row = await budget('holds');
  assert.deepEqual([row.spent, row.held], [before.spent, 0]);
});

test('a timed-out write (outcome_unknown) stays held; resolving its dead letter not_executed releases it', async () => {
  const base = up.count('/v1/holds');
  const before = await budget('holds');
  const k = key();
  await expectProblem(await write('/v1/holds', { amount: 700, scenario: 'hang' }, k), 504, 'outcome_unknown');
  assert.equal(up.count('/v1/holds') - base, 1);
  const held = await budget('holds');
  assert.deepEqual([held.spent, held.held, held.left], [before.spent, 700, before.left - 700]);

  await resolveNotExecuted(k['idempotency-key']!);
  const row = await budget('holds');
  assert.deepEqual([row.spent, row.held, row.left], [before.spent, 0, before.left]);
  assert.equal(up.count('/v1/holds') - base, 1);
});

// DESIGN §3.4: "an SDK's own retries are never executed twice". A keyless Intent: new refused over
// budget sent nothing, so it must not redirect the first payment's SDK retry away from its record.
test("a keyless payment's SDK retry after an Intent: new refused over budget joins it: never run twice", async () => {
  const base = up.count('/v1/topups');
  const pending = key(); // holds 50 while its outcome is unknown
  await expectProblem(await write('/v1/topups', { amount: 50, scenario: 'hang' }, pending), 504, 'outcome_unknown');
  const body = { amount: 40, destination: 'acct_topup' };
  await expect2xx(await write('/v1/topups', body, {}));
  await refusal(await write('/v1/topups', body, { 'idempotency-intent': 'new' }), 403, 'limit_exceeded');
  assert.equal(up.count('/v1/topups') - base, 2);
  // The pending write is resolved not_executed: its 50 is free again.
  await resolveNotExecuted(pending['idempotency-key']!);
  const retry = await write('/v1/topups', body, { 'x-stainless-retry-count': '1' });
  const text = await retry.text();
  assert.equal(up.count('/v1/topups') - base, 2, `the SDK retry of a payment that ran must not run again (it got ${retry.status} ${text})`);
  assert.equal(retry.headers.get('idempotent-replayed'), 'true', `${retry.status} ${text}`);
  assert.equal((await budget('topups')).spent, 40);
});

test('a count budget (3 per minute): the 4th write is refused', async () => {
  // Three writes and a fourth in the same UTC minute: start clear of its end (bounded: at most 6 s).
  if (new Date().getUTCSeconds() >= 55) await sleep(61_000 - (Date.now() % 60_000));
  for (let i = 0; i < 3; i++) await expect2xx(await write('/v1/orders', { item: i }));
  const problem = (await refusal(await write('/v1/orders', { item: 3 }), 403, 'limit_exceeded')) as unknown as LimitProblem;
  assert.deepEqual([problem.budget, problem.limit, problem.left], ['per-minute', 3, 0]);
  assert.equal(up.count('/v1/orders'), 3);
});

test('a per-write cap (500, period write) refuses one write of 600, not two of 400', async () => {
  const problem = (await refusal(await write('/v1/payouts', { amount: 600 }), 403, 'limit_exceeded')) as unknown as LimitProblem;
  assert.deepEqual([problem.budget, problem.limit, problem.reset], ['per-write', 500, null]);
  assert.equal(up.count('/v1/payouts'), 0);
  for (let i = 0; i < 2; i++) await expect2xx(await write('/v1/payouts', { amount: 400 }));
  assert.equal(up.count('/v1/payouts'), 2);
});

test('a currency-filtered budget counts only usd writes', async () => {
  await expect2xx(await write('/v1/fx', { amount: 100, currency: 'usd' }));
  await expect2xx(await write('/v1/fx', { amount: 500, currency: 'eur' }));
  await expect2xx(await write('/v1/fx', { amount: 100, currency: 'USD' }));
  assert.equal((await budget('usd-only')).spent, 100);
  await refusal(await write('/v1/fx', { amount: 100, currency: 'usd' }), 403, 'limit_exceeded');
  assert.equal(up.count('/v1/fx'), 3);
});

test('every refusal is a response log line with its code', async () => {
  await refusal(await write('/v1/charges', '{"amount":-1}'), 400, 'amount_invalid');
  await refusal(await write('/v1/payouts', { amount: 900 }), 403, 'limit_exceeded');
  const lines = () => wg.logs.responses().filter((l) => tally.has(String(l.code)));
  const total = [...tally.values()].reduce((a, b) => a + b, 0);
  await until(() => lines().length >= total, { timeoutMs: 5000, intervalMs: 10 });
  for (const [code, count] of tally) assert.equal(lines().filter((l) => l.code === code).length, count, code);
  for (const line of lines()) {
    assert.equal(line.status, line.code === 'amount_invalid' ? 400 : 403);
    assert.equal(line.outcome, 'rejected');
    assert.equal(line.attempts, 0, 'nothing was sent');
  }
});

describe('budgets per agent (identity.agentIdHeader)', () => {
  let agents: RunningWriteguard;
  before(async () => {
    agents = await startWriteguard({
      identity: { agentIdHeader: 'x-agent-id' },
      budgets: [money('agent-daily', '/v1/spend', 100)],
      upstreams: [{ name: 'pay', target: up.url }],
    });
  });
  after(async () => {
    await agents?.close();
  });

  test("agent A's spend does not count against agent B; GET /budgets?agent= shows each", async () => {
    const as = (agent: string) => ({ ...key(), 'x-agent-id': agent });
    await expect2xx(await write('/v1/spend', { amount: 80 }, as('agent-a'), agents));
    await expect2xx(await write('/v1/spend', { amount: 80 }, as('agent-b'), agents));
    const refused = (await expectProblem(
      await write('/v1/spend', { amount: 30 }, as('agent-a'), agents),
      403,
      'limit_exceeded',
    )) as unknown as LimitProblem;
    assert.equal(refused.left, 20);
    assert.equal(up.count('/v1/spend'), 2);
    const a = await budget('agent-daily', 'agent-a', agents);
    const b = await budget('agent-daily', 'agent-b', agents);
    assert.deepEqual([a.agent, a.spent, a.left, b.agent, b.spent, b.left], ['agent-a', 80, 20, 'agent-b', 80, 20]);
    const all = (await (await fetch(`${agents.adminUrl}/budgets`, { signal: AbortSignal.timeout(5000) })).json()) as { budgets: Row[] };
    assert.deepEqual(all.budgets.map((r) => r.agent).sort(), ['agent-a', 'agent-b']);
  });
});
