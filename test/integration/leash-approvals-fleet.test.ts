// Approvals (DESIGN §10.4) across a fleet: two writeguard instances on one Redis see the same
// approvals and decisions; `writeguard approvals list|approve|deny` decides them from outside; a
// keyless write (missing: derive, intent fields) is joined by its intent — its reworded re-send hears
// pending, and after approval runs once. Counted at the upstream throughout.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { ConfigInput } from '../../src/config/schema.js';
import { writeConfigFile } from '../helpers/config-file.js';
import { expectProblem, post, type Problem } from '../helpers/problem.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { readyz } from '../helpers/store-safety.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { eventually } from '../helpers/wait.js';
import { CLI, startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const exec = promisify(execFile);

const TOKEN = 'approvals-fleet-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const AGENT = 'x-agent-id';
const PAY = '/v1/payments';
const TRANSFERS = '/v1/transfers'; // keyless: derived key, joined by intent
const HTTP_MS = 5000;
const TEST_MS = 30_000;

let redis: RedisServer | undefined;
let up: CountingUpstream | undefined;
let file: { path: string; remove(): void } | undefined;
const fleet: RunningWriteguard[] = [];
let n = 0;

before(async () => {
  redis = await startRedis();
  up = await startUpstream((_req, res) => {
    res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${up!.received.length}` });
    res.end(JSON.stringify({ id: `pay_${up!.received.length}` }));
  });
  const config: ConfigInput = {
    store: { kind: 'redis', url: redis.url, initOnEmpty: true },
    admin: { token: TOKEN },
    identity: { agentIdHeader: AGENT },
    budgets: [{ name: 'daily-usd', match: 'POST *', amount: 'body:amount', limit: 1_000_000, period: 'day' }],
    upstreams: [
      {
        name: 'pay',
        target: up.url,
        retry: { maxAttempts: 1, maxCooldownSec: 0 },
        approval: [{ match: `POST ${PAY}`, amount: 'body:amount', scale: 0, above: 10_000, ttlSec: 86_400 }],
        routes: [
          {
            match: `POST ${TRANSFERS}`,
            idempotency: { missing: 'derive' },
            intent: { fields: ['body:amount', 'body:currency', 'body:destination'], windowSec: 600 },
            approval: [{ amount: 'body:amount', above: 10_000 }],
          },
        ],
      },
    ],
  };
  file = writeConfigFile(config);
  for (let i = 0; i < 2; i++) {
    const wg = await startWriteguard(config);
    fleet.push(wg);
    await eventually(async () => (await readyz(wg.adminUrl).catch(() => ({ status: 0 }))).status === 200, 15_000, {
      what: `${wg.adminUrl}/readyz`,
    });
  }
});

after(async () => {
  await Promise.all(fleet.map((wg) => wg.close().catch(() => undefined)));
  await up?.close();
  await redis?.stop();
  file?.remove();
});

type ApprovalProblem = Problem & { approval_id: string; amount: number };
interface Entry {
  id: string;
  state: string;
  agent: string;
  path: string;
  amount: number;
  idempotency_key: string;
}

const agent = (): string => `fleet-${process.pid}-${++n}`;
const newKey = (): string => `apf-${process.pid}-${++n}`;

function write(wg: RunningWriteguard, who: string, body: object, headers: Record<string, string>, path = PAY): Promise<Response> {
  return post(`${wg.url}${path}`, JSON.stringify(body), { [AGENT]: who, ...headers }, AbortSignal.timeout(HTTP_MS));
}
const pay = (wg: RunningWriteguard, who: string, key: string, amount: number): Promise<Response> =>
  write(wg, who, { amount, currency: 'usd', destination: 'acct_1' }, { 'idempotency-key': key });

async function refused(res: Response, code: string): Promise<ApprovalProblem> {
  const problem = (await expectProblem(res, 403, code)) as ApprovalProblem;
  assert.equal(res.headers.get('x-should-retry'), 'false');
  return problem;
}

async function ran(res: Response): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 201, text);
  assert.equal(res.headers.get('idempotent-replayed'), null, `executed, not replayed: ${text}`);
}

async function replayed(res: Response): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, 201, text);
  assert.equal(res.headers.get('idempotent-replayed'), 'true', text);
}

const decide = (wg: RunningWriteguard, id: string, verdict: 'approve' | 'deny'): Promise<Response> =>
  fetch(`${wg.adminUrl}/approvals/${id}/${verdict}`, { method: 'POST', headers: AUTH, signal: AbortSignal.timeout(HTTP_MS) });

async function listed(wg: RunningWriteguard): Promise<Entry[]> {
  const res = await fetch(`${wg.adminUrl}/approvals`, { headers: AUTH, signal: AbortSignal.timeout(HTTP_MS) });
  assert.equal(res.status, 200);
  return ((await res.json()) as { approvals: Entry[] }).approvals;
}

async function held(wg: RunningWriteguard, who: string): Promise<{ spent: number; held: number }> {
  const res = await fetch(`${wg.adminUrl}/budgets?agent=${who}`, { headers: AUTH, signal: AbortSignal.timeout(HTTP_MS) });
  const row = ((await res.json()) as { budgets: Array<{ spent: number; held: number }> }).budgets[0]!;
  return { spent: row.spent, held: row.held };
}

/** The CLI against the same Redis (exec: this process's event loop keeps serving the instances). */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [CLI, ...args, '--config', file!.path], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
      timeout: 15_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

test(
  'two instances, one Redis: both list it; approved on instance 2, the re-send on instance 1 runs once',
  { timeout: TEST_MS },
  async () => {
    const [a, b] = fleet as [RunningWriteguard, RunningWriteguard];
    const who = agent();
    const key = newKey();
    const base = up!.count(PAY);
    const { approval_id: id } = await refused(await pay(a, who, key, 12_345), 'approval_required');
    await refused(await pay(b, who, key, 12_345), 'approval_pending');
    for (const wg of fleet) {
      const entry = (await listed(wg)).find((e) => e.id === id);
      assert.deepEqual(entry && [entry.state, entry.agent, entry.amount, entry.idempotency_key], ['pending', who, 12_345, key]);
    }
    assert.deepEqual(await held(b, who), { spent: 0, held: 12_345 });
    // Both operators, one on each instance, at once: one decision applies.
    const answers = await Promise.all([decide(b, id, 'approve'), decide(a, id, 'approve')]);
    assert.deepEqual(answers.map((r) => r.status).sort(), [200, 409]);
    await expectProblem(
      answers.find((r) => r.status === 409)!,
      409,
      'stale',
    );
    assert.equal(up!.count(PAY) - base, 0, 'approving sends nothing');
    await ran(await pay(a, who, key, 12_345));
    await replayed(await pay(b, who, key, 12_345));
    await replayed(await pay(a, who, key, 12_345));
    assert.equal(up!.count(PAY) - base, 1, 'executed once');
    assert.deepEqual(await held(a, who), { spent: 12_345, held: 0 });
    for (const wg of fleet)
      assert.equal(
        (await listed(wg)).find((e) => e.id === id),
        undefined,
      );
  },
);

test('denied on instance 1: approval_denied on both, nothing sent, the hold released', { timeout: TEST_MS }, async () => {
  const [a, b] = fleet as [RunningWriteguard, RunningWriteguard];
  const who = agent();
  const key = newKey();
  const base = up!.count(PAY);
  const { approval_id: id } = await refused(await pay(b, who, key, 50_000), 'approval_required');
  assert.equal((await decide(a, id, 'deny')).status, 200);
  for (const wg of [a, b, a]) await refused(await pay(wg, who, key, 50_000), 'approval_denied');
  assert.equal(up!.count(PAY) - base, 0);
  assert.deepEqual(await held(b, who), { spent: 0, held: 0 });
});

test(
  'CLI: approvals list shows it; approvals approve ID → the re-send runs once; deciding again exits 1',
  { timeout: TEST_MS },
  async () => {
    const [a, b] = fleet as [RunningWriteguard, RunningWriteguard];
    const who = agent();
    const key = newKey();
    const denyKey = newKey();
    const base = up!.count(PAY);
    const { approval_id: id } = await refused(await pay(a, who, key, 20_000), 'approval_required');
    const { approval_id: denyId } = await refused(await pay(a, who, denyKey, 30_000), 'approval_required');

    const list = await cli('approvals', 'list');
    assert.equal(list.code, 0, list.stderr);
    const entries = (JSON.parse(list.stdout) as { approvals: Entry[] }).approvals;
    const entry = entries.find((e) => e.id === id);
    assert.deepEqual(entry && [entry.state, entry.agent, entry.path, entry.amount, entry.idempotency_key], [
      'pending',
      who,
      PAY,
      20_000,
      key,
    ]);
    assert.ok(entries.some((e) => e.id === denyId));

    const approved = await cli('approvals', 'approve', id);
    assert.deepEqual([approved.code, approved.stdout, approved.stderr], [0, 'approved\n', '']);
    const denied = await cli('approvals', 'deny', denyId);
    assert.deepEqual([denied.code, denied.stdout], [0, 'denied\n']);
    await ran(await pay(b, who, key, 20_000));
    await replayed(await pay(a, who, key, 20_000));
    await refused(await pay(b, who, denyKey, 30_000), 'approval_denied');
    assert.equal(up!.count(PAY) - base, 1, 'executed once');

    const again = await cli('approvals', 'approve', id);
    assert.deepEqual([again.code, again.stderr], [1, 'not applied: the approval is no longer pending\n']);
    const unknown = await cli('approvals', 'deny', 'not-an-approval-id');
    assert.deepEqual([unknown.code, unknown.stderr], [1, 'no such approval\n']);
    assert.equal(up!.count(PAY) - base, 1);
  },
);

/** A keyless transfer of its own (a destination no other test uses), its free text chosen per send. */
function transfer(amount: number): (memo: string) => object {
  const destination = `acct_${process.pid}_${++n}`;
  return (memo) => ({ amount, currency: 'usd', destination, description: memo });
}

test(
  'keyless: a reworded re-send is joined by its intent (pending); after approval an SDK retry runs it once',
  { timeout: TEST_MS },
  async () => {
    const [a, b] = fleet as [RunningWriteguard, RunningWriteguard];
    const who = agent();
    const body = transfer(15_000);
    const base = up!.count(TRANSFERS);
    const first = await refused(await write(a, who, body('Invoice 7 for March'), {}, TRANSFERS), 'approval_required');
    assert.match(first.idempotency_key ?? '', /^wgd_/, 'the key writeguard derived');
    const again = await refused(await write(b, who, body('Paying invoice #7, thanks!'), {}, TRANSFERS), 'approval_pending');
    assert.equal(again.approval_id, first.approval_id, 'the same approval');
    assert.equal(up!.count(TRANSFERS) - base, 0);
    assert.equal((await decide(b, first.approval_id, 'approve')).status, 200);

    await ran(await write(a, who, body('Invoice 7 (retry)'), { 'x-stainless-retry-count': '1' }, TRANSFERS));
    assert.equal(up!.count(TRANSFERS) - base, 1);
    await replayed(await write(b, who, body('Invoice 7 (retry 2)'), { 'x-stainless-retry-count': '2' }, TRANSFERS));
    // An unmarked identical payment after it ran is a possible duplicate, never a second execution.
    await expectProblem(await write(a, who, body('Invoice 7 again'), {}, TRANSFERS), 409, 'possible_duplicate');
    assert.equal(up!.count(TRANSFERS) - base, 1, 'executed once');
  },
);

test('keyless: after approval a plain reworded re-send runs it once; the next is a possible duplicate', { timeout: TEST_MS }, async () => {
  const [a, b] = fleet as [RunningWriteguard, RunningWriteguard];
  const who = agent();
  const body = transfer(16_000);
  const base = up!.count(TRANSFERS);
  const { approval_id: id } = await refused(await write(b, who, body('Rent'), {}, TRANSFERS), 'approval_required');
  assert.equal((await decide(a, id, 'approve')).status, 200);
  await ran(await write(a, who, body('Rent for April'), {}, TRANSFERS));
  assert.equal(up!.count(TRANSFERS) - base, 1);
  await expectProblem(await write(b, who, body('Rent, April'), {}, TRANSFERS), 409, 'possible_duplicate');
  await replayed(await write(a, who, body('Rent'), { 'idempotency-intent': 'retry' }, TRANSFERS));
  assert.equal(up!.count(TRANSFERS) - base, 1, 'executed once');
  assert.deepEqual(await held(a, who), { spent: 16_000, held: 0 });
});
