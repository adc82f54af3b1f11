// Approvals (DESIGN §10.4), one instance: a write whose amount is strictly above the threshold is
// answered 403 approval_required and not sent; its re-sends hear pending, then run once after a
// person approves (admin token required), or are refused for good after a denial or expiry, which
// release its budget hold. A pending approval's hold counts against the budget. Every test uses
// an agent of its own, and counts what the upstream executed.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectProblem, post, type Problem } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';
import type { ApprovalView } from '../../src/admin/approvals.js';

const TOKEN = 'approvals-admin-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const AGENT = 'x-agent-id';
const PAY = '/v1/payments';
const QUICK = '/v1/quick'; // its own rule: ttlSec 1
const REFUNDS = '/v1/refunds'; // no approval rule, only the budget
const HTTP_MS = 5000;
const LIMIT = 100_000;

let up: CountingUpstream;
let wg: RunningWriteguard;
let n = 0;

before(async () => {
  up = await startUpstream((_req, res) => {
    res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}` });
    res.end(JSON.stringify({ id: `pay_${up.received.length}` }));
  });
  wg = await startWriteguard({
    admin: { token: TOKEN },
    identity: { agentIdHeader: AGENT },
    budgets: [{ name: 'daily-usd', match: 'POST *', amount: 'body:amount', limit: LIMIT, period: 'day' }],
    upstreams: [
      {
        name: 'pay',
        target: up.url,
        timeoutMs: 2000,
        retry: { maxAttempts: 1, maxCooldownSec: 0 },
        approval: [{ match: `POST ${PAY}`, amount: 'body:amount', scale: 0, above: 10_000, ttlSec: 86_400 }],
        routes: [{ match: `POST ${QUICK}`, approval: [{ amount: 'body:amount', above: 10_000, ttlSec: 1 }] }],
      },
    ],
  });
});
after(async () => {
  await wg?.close();
  await up?.close();
});

type ApprovalProblem = Problem & { approval_id: string; expires_at: string; amount: number };
type Entry = ApprovalView;

const agent = (): string => `agent-${process.pid}-${++n}`;
const newKey = (): string => `appr-${process.pid}-${++n}`;

function write(who: string, key: string, amount: number, path = PAY): Promise<Response> {
  const body = JSON.stringify({ amount, currency: 'usd', destination: 'acct_1' });
  return post(`${wg.url}${path}`, body, { [AGENT]: who, 'idempotency-key': key }, AbortSignal.timeout(HTTP_MS));
}

/** A 403 approval problem: after_approval while it may still run, no_retry once it never will; SDKs told not to retry. */
async function refused(res: Response, code: string, key: string): Promise<ApprovalProblem> {
  const problem = (await expectProblem(res, 403, code)) as ApprovalProblem;
  const waiting = code === 'approval_required' || code === 'approval_pending';
  assert.equal(problem.retry_strategy, waiting ? 'after_approval' : 'no_retry');
  assert.equal(res.headers.get('x-should-retry'), 'false');
  assert.equal(problem.idempotency_key, key);
  assert.match(problem.approval_id, /^[A-Za-z0-9_-]+$/);
  assert.equal(new Date(Date.parse(problem.expires_at)).toISOString(), problem.expires_at);
  return problem;
}

async function ran(res: Response): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 201, text);
  assert.equal(res.headers.get('idempotent-replayed'), null, `executed, not replayed: ${text}`);
}

const admin = (path: string, init: RequestInit = {}): Promise<Response> =>
  fetch(`${wg.adminUrl}${path}`, { ...init, signal: AbortSignal.timeout(HTTP_MS) });
const decide = (id: string, verdict: 'approve' | 'deny', headers: Record<string, string> = AUTH): Promise<Response> =>
  admin(`/approvals/${id}/${verdict}`, { method: 'POST', headers });

async function listed(id: string): Promise<Entry | undefined> {
  const res = await admin('/approvals', { headers: AUTH });
  assert.equal(res.status, 200);
  return ((await res.json()) as { approvals: Entry[] }).approvals.find((a) => a.id === id);
}

async function budget(who: string): Promise<{ spent: number; held: number }> {
  const res = await admin(`/budgets?agent=${who}`, { headers: AUTH });
  assert.equal(res.status, 200);
  const row = ((await res.json()) as { budgets: Array<{ budget: string; spent: number; held: number }> }).budgets[0]!;
  return { spent: row.spent, held: row.held };
}

test('strictly above the threshold → 403 approval_required, nothing sent, hold taken; at or below → runs', async () => {
  const who = agent();
  const key = newKey();
  const before = Date.now();
  const problem = await refused(await write(who, key, 10_001), 'approval_required', key);
  assert.equal(problem.amount, 10_001);
  const expires = Date.parse(problem.expires_at);
  assert.ok(expires >= before + 86_399_000 && expires <= Date.now() + 86_401_000, problem.expires_at);
  assert.match(problem.detail, new RegExp(problem.approval_id));
  assert.equal(up.count(PAY), 0, 'nothing was sent');
  assert.deepEqual(await budget(who), { spent: 0, held: 10_001 });
  const base = up.count(PAY);
  await ran(await write(who, newKey(), 10_000));
  await ran(await write(who, newKey(), 1));
  assert.equal(up.count(PAY) - base, 2);
  assert.deepEqual(await budget(who), { spent: 10_001, held: 10_001 });
});

test('pending → listed; approve needs the token; approved → the re-send runs once, then replays', async () => {
  const who = agent();
  const key = newKey();
  const base = up.count(PAY);
  const { approval_id: id } = await refused(await write(who, key, 25_000), 'approval_required', key);
  const pending = await refused(await write(who, key, 25_000), 'approval_pending', key);
  assert.equal(pending.approval_id, id);
  await expectProblem(await write(who, key, 25_001), 422, 'idempotency_key_reuse_mismatch');
  const entry = await listed(id);
  assert.ok(entry, 'listed');
  assert.deepEqual(
    { ...entry, created_at: typeof entry.created_at },
    {
      id,
      state: 'pending',
      agent: who,
      upstream: 'pay',
      method: 'POST',
      path: PAY,
      amount: 25_000,
      idempotency_key: key,
      created_at: 'string',
      expires_at: pending.expires_at,
      ...('epoch' in entry ? { epoch: entry.epoch } : {}),
    },
  );
  assert.ok(Math.abs(Date.parse(entry.created_at) - Date.now()) < 10_000, entry.created_at);
  // Without the token (or with a wrong one): 401 for listing and deciding, and nothing changes.
  await expectProblem(await admin('/approvals'), 401, 'unauthorized');
  await expectProblem(await decide(id, 'approve', {}), 401, 'unauthorized');
  await expectProblem(await decide(id, 'approve', { authorization: 'Bearer not-the-token-at-all-000' }), 401, 'unauthorized');
  assert.equal((await listed(id))?.state, 'pending');
  await refused(await write(who, key, 25_000), 'approval_pending', key);
  assert.equal(up.count(PAY) - base, 0);

  const res = await decide(id, 'approve');
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { decided: true, state: 'approved' });
  assert.equal(await listed(id), undefined, 'no longer pending');
  await ran(await write(who, key, 25_000));
  assert.equal(up.count(PAY) - base, 1);
  assert.equal(up.received.at(-1)!.headers['idempotency-key'], key, 'sent under the key the agent gave');
  const replay = await write(who, key, 25_000);
  assert.equal(replay.status, 201);
  assert.equal(replay.headers.get('idempotent-replayed'), 'true');
  assert.equal(up.count(PAY) - base, 1, 'executed once');
  assert.deepEqual(await budget(who), { spent: 25_000, held: 0 });
  await expectProblem(await decide(id, 'approve'), 409, 'stale');
  await expectProblem(await decide('not-an-approval-id', 'approve'), 404, 'not_found');
});

test('deny → approval_denied for good, nothing sent, the hold released', async () => {
  const who = agent();
  const key = newKey();
  const base = up.count(PAY);
  const { approval_id: id } = await refused(await write(who, key, 30_000), 'approval_required', key);
  assert.deepEqual(await budget(who), { spent: 0, held: 30_000 });
  const res = await decide(id, 'deny');
  assert.deepEqual([res.status, await res.json()], [200, { decided: true, state: 'denied' }]);
  for (let i = 0; i < 3; i++) await refused(await write(who, key, 30_000), 'approval_denied', key);
  assert.equal(up.count(PAY) - base, 0);
  assert.deepEqual(await budget(who), { spent: 0, held: 0 });
  assert.equal(await listed(id), undefined);
  await expectProblem(await decide(id, 'approve'), 409, 'stale');
  await refused(await write(who, key, 30_000), 'approval_denied', key);
  assert.equal(up.count(PAY) - base, 0);
});

test('expiry (ttlSec 1): too late to approve; the re-send → approval_expired, nothing sent, the hold released', async () => {
  const who = agent();
  const key = newKey();
  const base = up.count(QUICK);
  const { approval_id: id, expires_at } = await refused(await write(who, key, 20_000, QUICK), 'approval_required', key);
  assert.ok(Date.parse(expires_at) <= Date.now() + 1500, expires_at);
  await refused(await write(who, key, 20_000, QUICK), 'approval_pending', key);
  await sleep(Math.max(0, Date.parse(expires_at) - Date.now()) + 300);
  await expectProblem(await decide(id, 'approve'), 409, 'stale');
  for (let i = 0; i < 2; i++) await refused(await write(who, key, 20_000, QUICK), 'approval_expired', key);
  assert.equal(up.count(QUICK) - base, 0);
  assert.deepEqual(await budget(who), { spent: 0, held: 0 });
  assert.equal(await listed(id), undefined);
});

test('expiry with no re-send: the hold is released and the approval is no longer listed as pending', async () => {
  // DESIGN §10.4: "its budget hold is taken … and released on denial or expiry" — whether or not the agent comes back.
  const who = agent();
  const key = newKey();
  const { approval_id: id, expires_at } = await refused(await write(who, key, 20_000, QUICK), 'approval_required', key);
  await sleep(Math.max(0, Date.parse(expires_at) - Date.now()) + 300);
  const state = (await listed(id))?.state ?? 'absent';
  const { held } = await budget(who);
  assert.deepEqual({ held, listed: state === 'expired' ? 'absent' : state }, { held: 0, listed: 'absent' });
  // Listing expired it (holds released); the agent's re-send then hears so, and nothing is released twice.
  await refused(await write(who, key, 20_000, QUICK), 'approval_expired', key);
  assert.deepEqual(await budget(who), { spent: 0, held: 0 });
});

test('two operators approve at once: one 200, one 409 stale; the re-send runs once', async () => {
  const who = agent();
  const key = newKey();
  const base = up.count(PAY);
  const { approval_id: id } = await refused(await write(who, key, 40_000), 'approval_required', key);
  const answers = await Promise.all([decide(id, 'approve'), decide(id, 'approve')]);
  assert.deepEqual(answers.map((r) => r.status).sort(), [200, 409]);
  await expectProblem(
    answers.find((r) => r.status === 409)!,
    409,
    'stale',
  );
  assert.equal(up.count(PAY) - base, 0, 'approving sends nothing');
  await ran(await write(who, key, 40_000));
  const replay = await write(who, key, 40_000);
  assert.deepEqual([replay.status, replay.headers.get('idempotent-replayed')], [201, 'true']);
  assert.equal(up.count(PAY) - base, 1, 'executed once');
});

test('a pending approval holds its amount: a write that fits only if it were ignored is refused limit_exceeded', async () => {
  const who = agent();
  const key = newKey();
  const base = up.count(REFUNDS);
  const { approval_id: id } = await refused(await write(who, key, 60_000), 'approval_required', key);
  const over = (await expectProblem(await write(who, newKey(), 50_000, REFUNDS), 403, 'limit_exceeded')) as Problem & { left: number };
  assert.equal(over.left, LIMIT - 60_000);
  assert.equal(up.count(REFUNDS) - base, 0);
  await ran(await write(who, newKey(), 40_000, REFUNDS));
  assert.deepEqual(await budget(who), { spent: 40_000, held: 60_000 });
  // Denied: its hold goes back, and the same write now fits.
  assert.equal((await decide(id, 'deny')).status, 200);
  await ran(await write(who, newKey(), 50_000, REFUNDS));
  assert.equal(up.count(REFUNDS) - base, 2);
  assert.deepEqual(await budget(who), { spent: 90_000, held: 0 });
});
