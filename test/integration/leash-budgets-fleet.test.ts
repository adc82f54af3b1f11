// Budgets across a fleet (DESIGN §10.2): two real writeguard processes on one Redis reserve a daily
// spend cap atomically — 200 concurrent writes of 7 against 1000 run exactly 142 times — replays
// never reserve twice, the spend survives a restart of the whole fleet, `writeguard budgets show`
// reads it, and a Redis Cluster holds the same cap.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Cluster } from 'ioredis';
import type { ConfigInput } from '../../src/config/schema.js';
import { allSlotSentinelKeys } from '../../src/store/redis/slot-sentinels.js';
import { writeConfigFile } from '../helpers/config-file.js';
import { assertProblem, post } from '../helpers/problem.js';
import { startCluster, startRedis, type RedisServer, type TestCluster } from '../helpers/redis.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { eventually } from '../helpers/wait.js';
import { CLI, launchWriteguard, startWriteguard, type RunningWriteguard, type WriteguardProcess } from '../helpers/writeguard.js';
import type { BudgetRow } from '../../src/admin/budgets.js';

const exec = promisify(execFile);

const LIMIT = 1000;
const AMOUNT = 7;
const WRITES = 200;
const ADMITTED = Math.floor(LIMIT / AMOUNT); // 142
const SPENT = ADMITTED * AMOUNT; // 994
const UPSTREAM_DELAY_MS = 30;
const READY_MS = 15_000;
const STOP_MS = 10_000;
/** 200 begin scripts at once on a loaded 2-core box can take over the 1 s default: fail-closed 503s are not what is tested here. */
const STORE_TIMEOUT_MS = 5000;

const budgets: ConfigInput['budgets'] = [
  { name: 'daily-usd', match: 'POST /v1/payments', amount: 'body:amount', scale: 0, limit: LIMIT, period: 'day' },
];

/** A counting upstream answering 201 after a short delay, with a body naming the execution. */
async function delayedUpstream(): Promise<CountingUpstream> {
  const up: CountingUpstream = await startUpstream((_req, res) => {
    const n = up.received.length;
    setTimeout(() => {
      res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${n}` });
      res.end(JSON.stringify({ id: `pay_${n}` }));
    }, UPSTREAM_DELAY_MS);
  });
  return up;
}

/** Today's UTC day bucket and the next 00:00 UTC, computed here independently of src. */
function today(): { bucket: string; reset: string } {
  const now = new Date();
  const reset = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  return { bucket: `d${now.toISOString().slice(0, 10)}`, reset: reset.toISOString() };
}

async function waitReady(adminUrl: string): Promise<void> {
  await eventually(
    async () => {
      try {
        const res = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
        await res.arrayBuffer();
        return res.status === 200;
      } catch {
        return false;
      }
    },
    READY_MS,
    { what: `${adminUrl}/readyz`, intervalMs: 50 },
  );
}

function assertBudget(rows: BudgetRow[], spent: number, where: string): void {
  const { bucket, reset } = today();
  assert.deepEqual(
    rows,
    [
      {
        agent: 'default',
        budget: 'daily-usd',
        period: 'day',
        bucket,
        unit: 'minor units',
        scale: 0,
        limit: LIMIT,
        spent,
        held: 0,
        left: LIMIT - spent,
        reset,
      },
    ],
    where,
  );
}

async function adminBudgets(adminUrl: string, query = '?agent=default'): Promise<BudgetRow[]> {
  const res = await fetch(`${adminUrl}/budgets${query}`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return (JSON.parse(text) as { budgets: BudgetRow[] }).budgets;
}

function payment(url: string, key: string, amount: number): Promise<{ res: Response; text: string }> {
  return post(`${url}/v1/payments`, JSON.stringify({ amount }), { 'idempotency-key': key }, AbortSignal.timeout(20_000)).then(
    async (res) => ({ res, text: await res.text() }),
  );
}

/** Asserts a 403 limit_exceeded naming the budget, with what is left (in minor units) and the reset. */
function assertRefused(answer: { res: Response; text: string }, left: number): void {
  const problem = assertProblem(answer.res, answer.text, 403, 'limit_exceeded') as unknown as Record<string, unknown>;
  assert.equal(problem['retry_strategy'], 'no_retry');
  assert.equal(problem['budget'], 'daily-usd');
  assert.equal(problem['limit'], LIMIT);
  assert.equal(problem['left'], left);
  assert.equal(problem['reset'], today().reset);
}

/**
 * 200 concurrent keyed writes of 7 (distinct keys, round-robin over `urls`) against a limit of 1000:
 * exactly 142 reach the upstream and answer 201, 58 answer 403 limit_exceeded, nothing else.
 * Returns the admitted keys with the answer each got.
 */
async function raceTheCap(urls: string[], up: CountingUpstream, tag: string): Promise<Map<string, string>> {
  const before = up.count('/v1/payments');
  const keys = Array.from({ length: WRITES }, (_, i) => `${tag}-${process.pid}-${i}`);
  const answers = await Promise.all(keys.map((key, i) => payment(urls[i % urls.length]!, key, AMOUNT)));
  const statuses = new Map<number, number>();
  for (const { res } of answers) statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
  assert.deepEqual(
    [...statuses].sort(([a], [b]) => a - b),
    [
      [201, ADMITTED],
      [403, WRITES - ADMITTED],
    ],
    `only 201 and 403, in the exact split; e.g. ${answers.find((a) => a.res.status !== 201 && a.res.status !== 403)?.text ?? '-'}`,
  );
  assert.equal(up.count('/v1/payments') - before, ADMITTED, 'upstream executions');
  const admitted = new Map<string, string>();
  answers.forEach((answer, i) => {
    if (answer.res.status === 201) {
      assert.equal(answer.res.headers.get('idempotent-replayed'), null);
      assert.equal(answer.res.headers.get('writeguard-stored'), null, 'the result was stored');
      admitted.set(keys[i]!, answer.text);
    } else {
      // Spend moves in steps of 7 up to 994, so a refusal always sees exactly 6 left.
      assertRefused(answer, LIMIT - SPENT);
    }
  });
  // Each admitted write reached the upstream once: one distinct forwarded key per execution.
  const forwarded = new Set(up.received.slice(before).map((r) => String(r.headers['idempotency-key'])));
  assert.equal(forwarded.size, ADMITTED);
  assert.equal(new Set(admitted.values()).size, ADMITTED, 'every admitted write got its own execution');
  return admitted;
}

/** SIGTERM, then SIGKILL if it lingers; resolves with the exit code once it is gone. */
async function stop(wg: WriteguardProcess): Promise<number | null> {
  if (wg.child.exitCode !== null || wg.child.signalCode !== null) return wg.child.exitCode;
  wg.kill('SIGTERM');
  const timer = setTimeout(() => wg.kill('SIGKILL'), STOP_MS);
  try {
    return await wg.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** The values the cluster's per-slot sentinel keys hold, with how many slots hold each (null: missing). */
async function slotSentinelValues(c: TestCluster): Promise<Map<string | null, number>> {
  const client = new Cluster(c.seeds, { enableOfflineQueue: true, redisOptions: { connectTimeout: 2000, commandTimeout: 5000 } });
  client.on('error', () => undefined);
  try {
    const keys = allSlotSentinelKeys('wg:');
    const values = new Map<string | null, number>();
    for (let i = 0; i < keys.length; i += 1024)
      for (const v of await Promise.all(keys.slice(i, i + 1024).map((k) => client.get(k)))) values.set(v, (values.get(v) ?? 0) + 1);
    return values;
  } finally {
    client.disconnect();
  }
}

let redis: RedisServer | undefined;
let up: CountingUpstream | undefined;
let file: { path: string; remove(): void } | undefined;
const launched: WriteguardProcess[] = [];
let fleet: { proc: WriteguardProcess; url: string; admin: string }[] = [];
let admitted = new Map<string, string>();

let cluster: TestCluster | undefined;
let clusterUp: CountingUpstream | undefined;
const inProcess: RunningWriteguard[] = [];

async function launchFleet(): Promise<void> {
  const procs = [0, 1].map(() => launchWriteguard(['--config', file!.path]));
  launched.push(...procs);
  fleet = [];
  for (const proc of procs) {
    const bound = await proc.ready;
    await waitReady(bound.admin);
    fleet.push({ proc, url: bound.listen[0]!, admin: bound.admin });
  }
}

before(async () => {
  // A day bucket turning over mid-file would split the spend: start after midnight when it is near.
  const toMidnight = Date.parse(today().reset) - Date.now();
  if (toMidnight < 90_000) await sleep(toMidnight + 1000);
  redis = await startRedis();
  up = await delayedUpstream();
  file = writeConfigFile({
    listen: { port: 0 },
    admin: { port: 0 },
    store: { kind: 'redis', url: redis.url, initOnEmpty: true, commandTimeoutMs: STORE_TIMEOUT_MS },
    upstreams: [{ name: 'pay', target: up.url }],
    budgets,
  });
  await launchFleet();
});

after(async () => {
  for (const wg of launched) if (wg.child.exitCode === null && wg.child.signalCode === null) wg.kill('SIGKILL');
  await Promise.all(launched.map((wg) => wg.exited));
  await Promise.all(inProcess.map((wg) => wg.close().catch(() => undefined)));
  await up?.close();
  await clusterUp?.close();
  await redis?.stop();
  await cluster?.stop();
  file?.remove();
});

test('two processes, one Redis: 200 concurrent writes of 7 against 1000 → exactly 142 run, 58 refused', async () => {
  admitted = await raceTheCap(
    fleet.map((f) => f.url),
    up!,
    'fleet',
  );
  for (const { admin } of fleet) {
    assertBudget(await adminBudgets(admin), SPENT, `GET ${admin}/budgets?agent=default`);
    // Without ?agent: every agent with a counter this period — only the default agent.
    assertBudget(await adminBudgets(admin, ''), SPENT, `GET ${admin}/budgets`);
  }
});

test('retries of 20 admitted keys, on either process, replay: no execution, no spend', async () => {
  assert.equal(admitted.size, ADMITTED, 'the race ran');
  const retried = [...admitted].slice(0, 20);
  const replays = await Promise.all(retried.map(([key], i) => payment(fleet[i % 2]!.url, key, AMOUNT)));
  replays.forEach((replay, i) => {
    assert.equal(replay.res.status, 201, replay.text);
    assert.equal(replay.res.headers.get('idempotent-replayed'), 'true');
    assert.equal(replay.text, retried[i]![1], 'the stored answer');
  });
  assert.equal(up!.count('/v1/payments'), ADMITTED);
  for (const { admin } of fleet) assertBudget(await adminBudgets(admin), SPENT, `after replays, ${admin}`);
});

test('restart of the whole fleet: the spend stays; 7 is refused, 6 runs', async () => {
  const codes = await Promise.all(fleet.map((f) => stop(f.proc)));
  assert.deepEqual(codes, [0, 0], 'a SIGTERM drains and exits 0');
  await launchFleet();
  for (const { admin } of fleet) assertBudget(await adminBudgets(admin), SPENT, `after restart, ${admin}`);

  const seven = await payment(fleet[0]!.url, `after-restart-7-${process.pid}`, 7);
  assertRefused(seven, LIMIT - SPENT);
  assert.equal(up!.count('/v1/payments'), ADMITTED, 'nothing sent');

  const six = await payment(fleet[1]!.url, `after-restart-6-${process.pid}`, 6);
  assert.equal(six.res.status, 201, six.text);
  assert.equal(up!.count('/v1/payments'), ADMITTED + 1);
  for (const { admin } of fleet) assertBudget(await adminBudgets(admin), LIMIT, `after the write of 6, ${admin}`);
});

test('writeguard budgets show --agent default prints the shared state and exits 0', async () => {
  const { stdout, stderr } = await exec(process.execPath, [CLI, 'budgets', 'show', '--agent', 'default', '--config', file!.path], {
    env: { PATH: process.env.PATH },
    encoding: 'utf8',
    timeout: 15_000,
  }); // rejects on a non-zero exit
  assert.equal(stderr, '');
  assertBudget((JSON.parse(stdout) as { budgets: BudgetRow[] }).budgets, LIMIT, 'budgets show');
});

test('Redis Cluster, two writeguards: 200 concurrent writes of 7 against 1000 → exactly 142 run', async () => {
  cluster = await startCluster();
  clusterUp = await delayedUpstream();
  const config = {
    store: { kind: 'redis' as const, cluster: cluster.seeds, initOnEmpty: true, commandTimeoutMs: STORE_TIMEOUT_MS },
    upstreams: [{ name: 'pay', target: clusterUp.url }],
    budgets,
  };
  for (let i = 0; i < 2; i++) inProcess.push(await startWriteguard(config));
  for (const wg of inProcess) await waitReady(wg.adminUrl);
  // Both initialised the empty cluster (initOnEmpty) at once: they must have agreed on one sentinel,
  // in every slot, or the begin script of a slot holding the other's value refuses every write.
  const sentinels = await slotSentinelValues(cluster);
  assert.equal(sentinels.size, 1, `one store sentinel across all 16,384 slots; found ${JSON.stringify([...sentinels])}`);
  assert.ok(![...sentinels.keys()].includes(null));
  await raceTheCap(
    inProcess.map((wg) => wg.url),
    clusterUp,
    'cluster',
  );
  for (const wg of inProcess) assertBudget(await adminBudgets(wg.adminUrl), SPENT, `cluster, ${wg.adminUrl}`);
});
