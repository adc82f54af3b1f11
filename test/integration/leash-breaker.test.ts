// The breaker (DESIGN §10.5): an agent whose writes were refused `refusals` times within `windowSec`
// — by the leash, or by the upstream's definitive 4xx, never by a 429 — is paused fleet-wide: its
// writes get 423 agent_paused (Retry-After, paused_until) and nothing reaches the upstream, while
// other agents' writes and its own reads still pass, until `pauseSec` ends or an operator resumes it
// (admin API with the token, or `writeguard agents resume`). Counted at the upstream throughout.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { ConfigInput } from '../../src/config/schema.js';
import { writeConfigFile } from '../helpers/config-file.js';
import { assertProblem, expectProblem, post } from '../helpers/problem.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { readyz } from '../helpers/store-safety.js';
import { echo, startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { eventually, until } from '../helpers/wait.js';
import { CLI, startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const exec = promisify(execFile);

const TOKEN = 'breaker-admin-token-0123456789';
const AGENT = 'x-agent-id';
const PAY = '/v1/payments';
const DECLINED = '/v1/declined';
const LIMITED = '/v1/limited';
const BALANCE = '/v1/balance';
const REFUSALS = 5;
const PAUSE_SEC = 600;
const TEST_MS = 30_000;
const HTTP_MS = 5_000;

const ALLOWED = { amount: 100, currency: 'usd', destination: 'acct_ok' };
const REFUSED = { amount: 100, currency: 'usd', destination: 'acct_evil' };

let redis: RedisServer | undefined;
let up: CountingUpstream | undefined;
let file: { path: string; remove(): void } | undefined;
const started: RunningWriteguard[] = [];
/** Two instances sharing one Redis, breaker { refusals: 5, windowSec: 60, pauseSec: 600 }. */
let fleet: RunningWriteguard[] = [];
let seq = 0;

/** The upstream "pay": 402 on /v1/declined, 429 on /v1/limited, otherwise an echo (201 writes, 200 reads). */
function upstreamConfig(
  target: string,
  breaker: { refusals: number; windowSec: number; pauseSec: number },
): ConfigInput['upstreams'][number] {
  return {
    name: 'pay',
    target,
    policy: [{ match: `POST ${PAY}`, field: 'body:destination', in: ['acct_ok'], code: 'recipient_not_allowed' }],
    breaker,
    // A 429 is answered as it came: never retried, no cooldown.
    retry: { maxAttempts: 1, maxCooldownSec: 0 },
  };
}

function configFor(
  store: ConfigInput['store'],
  breaker: { refusals: number; windowSec: number; pauseSec: number } = { refusals: REFUSALS, windowSec: 60, pauseSec: PAUSE_SEC },
): ConfigInput {
  return {
    store,
    identity: { agentIdHeader: AGENT },
    admin: { token: TOKEN },
    upstreams: [upstreamConfig(up!.url, breaker)],
  };
}

async function start(config: ConfigInput): Promise<RunningWriteguard> {
  const wg = await startWriteguard(config);
  started.push(wg);
  await eventually(async () => (await readyz(wg.adminUrl).catch(() => ({ status: 0 }))).status === 200, 15_000, {
    what: `${wg.adminUrl}/readyz`,
  });
  return wg;
}

interface Answer {
  res: Response;
  text: string;
}

/** A keyed write (a fresh key each time) by `agent`. */
async function write(url: string, agent: string, body: object, path = PAY): Promise<Answer> {
  const res = await post(
    `${url}${path}`,
    JSON.stringify(body),
    { [AGENT]: agent, 'idempotency-key': `brk-${process.pid}-${++seq}` },
    AbortSignal.timeout(HTTP_MS),
  );
  return { res, text: await res.text() };
}

async function read(url: string, agent: string): Promise<Answer> {
  const res = await fetch(`${url}${BALANCE}`, { headers: { [AGENT]: agent }, signal: AbortSignal.timeout(HTTP_MS) });
  return { res, text: await res.text() };
}

/** A 403 recipient_not_allowed of the policy; nothing sent. */
async function refusedWrite(url: string, agent: string): Promise<void> {
  const before = up!.count(PAY);
  const answer = await write(url, agent, REFUSED);
  assertProblem(answer.res, answer.text, 403, 'recipient_not_allowed');
  assert.equal(up!.count(PAY), before, 'a policy refusal sends nothing');
}

/** `n` policy refusals of `agent`, alternating over `urls`. */
async function refuse(urls: string[], agent: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await refusedWrite(urls[i % urls.length]!, agent);
}

/** An allowed write that ran: 201, one more execution at the upstream. */
async function runs(url: string, agent: string): Promise<void> {
  const before = up!.count(PAY);
  const answer = await write(url, agent, ALLOWED);
  assert.equal(answer.res.status, 201, answer.text);
  assert.equal(up!.count(PAY), before + 1, 'executed once');
}

/**
 * A 423 agent_paused problem: no_retry, Retry-After in whole seconds within (0, pauseSec], and
 * paused_until an ISO time that Retry-After points at. Returns paused_until (ms).
 */
function assertPaused(answer: Answer, pauseSec: number): number {
  const problem = assertProblem(answer.res, answer.text, 423, 'agent_paused') as unknown as Record<string, unknown>;
  assert.equal(problem['retry_strategy'], 'no_retry');
  assert.equal(answer.res.headers.get('x-should-retry'), 'false', 'SDKs must not retry it');
  const retryAfter = answer.res.headers.get('retry-after');
  assert.match(retryAfter ?? '', /^\d+$/, 'Retry-After in seconds');
  const seconds = Number(retryAfter);
  assert.ok(seconds > 0 && seconds <= pauseSec, `Retry-After ${seconds} within (0, ${pauseSec}]`);
  const pausedUntil = problem['paused_until'];
  assert.equal(typeof pausedUntil, 'string', answer.text);
  const untilMs = Date.parse(pausedUntil as string);
  assert.equal(new Date(untilMs).toISOString(), pausedUntil, 'an ISO 8601 time');
  const now = Date.now();
  assert.ok(untilMs > now - 1000 && untilMs <= now + pauseSec * 1000 + 1000, `paused_until ${pausedUntil} within pauseSec from now`);
  // Retry-After is the time left to paused_until, rounded up (at least 1).
  assert.ok(Math.abs(seconds - Math.max(1, Math.ceil((untilMs - now) / 1000))) <= 1, `Retry-After ${seconds} matches ${pausedUntil}`);
  return untilMs;
}

/** Any write of `agent` — allowed, or one the policy would refuse — gets 423 on every url; nothing sent. Returns paused_until. */
async function assertPausedEverywhere(urls: string[], agent: string, pauseSec = PAUSE_SEC): Promise<number> {
  const before = up!.count();
  const untils = new Set<number>();
  for (const url of urls) {
    untils.add(assertPaused(await write(url, agent, ALLOWED), pauseSec));
    untils.add(assertPaused(await write(url, agent, REFUSED), pauseSec));
  }
  assert.equal(untils.size, 1, 'one pause, the same on every instance');
  assert.equal(up!.count(), before, 'a paused write sends nothing');
  return [...untils][0]!;
}

function resumeViaAdmin(adminUrl: string, agent: string, authorization?: string): Promise<Response> {
  return fetch(`${adminUrl}/agents/${agent}/resume`, {
    method: 'POST',
    headers: authorization === undefined ? {} : { authorization },
    signal: AbortSignal.timeout(HTTP_MS),
  });
}

function pausedLogLines(wgs: RunningWriteguard[]): number {
  return wgs.reduce((n, wg) => n + wg.logs.lines.filter((l) => l.msg === 'agent paused by the breaker').length, 0);
}

before(async () => {
  redis = await startRedis();
  up = await startUpstream((req, res) => {
    const path = req.url.split('?')[0];
    if (path === DECLINED) {
      res.writeHead(402, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'card_error', code: 'card_declined' } }));
    } else if (path === LIMITED) {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
      res.end(JSON.stringify({ error: { type: 'rate_limit_error' } }));
    } else {
      return echo(req, res);
    }
  });
  const config = configFor({ kind: 'redis', url: redis.url, initOnEmpty: true });
  file = writeConfigFile(config);
  fleet = [await start(config), await start(config)];
});

after(async () => {
  await Promise.all(started.map((wg) => wg.close().catch(() => undefined)));
  await up?.close();
  await redis?.stop();
  file?.remove();
});

test(
  'two instances, one Redis: 5 policy refusals (alternating) pause the agent on both — 423, nothing sent; another agent writes, the agent reads',
  { timeout: TEST_MS },
  async () => {
    const urls = fleet.map((wg) => wg.url);
    const a = 'agent-a';
    const b = 'agent-b';
    // Four refusals do not pause it (an allowed write in between neither counts nor resets).
    await refuse(urls, a, REFUSALS - 1);
    await runs(urls[1]!, a);
    await runs(urls[0]!, a);
    assert.equal(pausedLogLines(fleet), 0);
    // The fifth is still answered 403 — and trips the breaker.
    await refusedWrite(urls[0]!, a);
    await eventually(() => pausedLogLines(fleet) === 1, 2000, { what: 'the "agent paused" warning' });

    const pausedUntil = await assertPausedEverywhere(urls, a);
    assert.ok(pausedUntil > Date.now() + (PAUSE_SEC - 30) * 1000, 'paused for about pauseSec');

    // Another agent's writes run, on both instances.
    await runs(urls[0]!, b);
    await runs(urls[1]!, b);
    // The paused agent's reads pass through, on both instances.
    for (const url of urls) {
      const before = up!.count(BALANCE);
      const answer = await read(url, a);
      assert.equal(answer.res.status, 200, answer.text);
      assert.equal(up!.count(BALANCE), before + 1, 'the read reached the upstream');
    }
    // Still paused, the same pause: nothing of the above moved it, and paused writes did not count.
    assert.equal(await assertPausedEverywhere(urls, a), pausedUntil);
    assert.equal(pausedLogLines(fleet), 1, 'paused once');
    // Each paused write is a response line with its code, rejected, no attempt.
    const line = (await fleet[1]!.logs.waitForResponses(1)).findLast((l) => l.code === 'agent_paused');
    assert.equal(line?.status, 423);
    assert.equal(line?.outcome, 'rejected');
    assert.equal(line?.attempts, 0);
  },
);

test("the upstream's definitive 4xx counts: five 402s pause the agent on both instances", { timeout: TEST_MS }, async () => {
  const urls = fleet.map((wg) => wg.url);
  const c = 'agent-c';
  const before = up!.count(DECLINED);
  for (let i = 0; i < REFUSALS; i++) {
    const answer = await write(urls[i % 2]!, c, ALLOWED, DECLINED);
    assert.equal(answer.res.status, 402, answer.text);
    assert.match(answer.text, /card_declined/, "the upstream's answer, as it came");
  }
  assert.equal(up!.count(DECLINED), before + REFUSALS, 'each 402 came from the upstream, once');
  await assertPausedEverywhere(urls, c);
  // The route that refused is paused too: nothing more reaches it.
  for (const url of urls) assertPaused(await write(url, c, ALLOWED, DECLINED), PAUSE_SEC);
  assert.equal(up!.count(DECLINED), before + REFUSALS);
});

test('a 429 of the upstream does not count: eight of them, and the agent still writes', { timeout: TEST_MS }, async () => {
  const urls = fleet.map((wg) => wg.url);
  const d = 'agent-d';
  const before = up!.count(LIMITED);
  for (let i = 0; i < 8; i++) {
    const answer = await write(urls[i % 2]!, d, ALLOWED, LIMITED);
    assert.equal(answer.res.status, 429, answer.text);
  }
  assert.equal(up!.count(LIMITED), before + 8, 'each 429 came from the upstream, once (not retried)');
  await runs(urls[0]!, d);
  await runs(urls[1]!, d);
});

test('policy refusals and upstream 4xx add up to one count', { timeout: TEST_MS }, async () => {
  const urls = fleet.map((wg) => wg.url);
  const e = 'agent-e';
  await refuse(urls, e, 3);
  for (let i = 0; i < 2; i++) assert.equal((await write(urls[i]!, e, ALLOWED, DECLINED)).res.status, 402);
  await assertPausedEverywhere(urls, e);
});

test(
  'resume: the admin API without the token is 401 and changes nothing; with it the agent writes again on both; then the CLI does the same',
  { timeout: TEST_MS },
  async () => {
    const urls = fleet.map((wg) => wg.url);
    const f = 'agent-f';
    await refuse(urls, f, REFUSALS);
    const pausedUntil = await assertPausedEverywhere(urls, f);

    // No token, or a wrong one: refused, and the pause stands on both instances.
    await expectProblem(await resumeViaAdmin(fleet[0]!.adminUrl, f), 401, 'unauthorized');
    await expectProblem(await resumeViaAdmin(fleet[1]!.adminUrl, f, 'Bearer not-the-admin-token-at-all'), 401, 'unauthorized');
    assert.equal(await assertPausedEverywhere(urls, f), pausedUntil, 'nothing changed');

    // With the token, on one instance: resumed on both.
    const resumed = await resumeViaAdmin(fleet[1]!.adminUrl, f, `Bearer ${TOKEN}`);
    const body = await resumed.text();
    assert.equal(resumed.status, 200, body);
    assert.deepEqual(JSON.parse(body), { resumed: true, was_paused: true });
    await runs(urls[0]!, f);
    await runs(urls[1]!, f);
    const again = await resumeViaAdmin(fleet[0]!.adminUrl, f, `Bearer ${TOKEN}`);
    assert.deepEqual(await again.json(), { resumed: true, was_paused: false });

    // Paused again (the count started over: five more refusals), then resumed by the CLI on the same Redis.
    await refuse(urls, f, REFUSALS - 1);
    await runs(urls[1]!, f);
    await refusedWrite(urls[0]!, f);
    await assertPausedEverywhere(urls, f);
    const cli = await exec(process.execPath, [CLI, 'agents', 'resume', f, '--config', file!.path], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
      timeout: 15_000,
    }); // rejects on a non-zero exit
    assert.equal(cli.stdout, `${f} resumed\n`);
    assert.equal(cli.stderr, '');
    await runs(urls[0]!, f);
    await runs(urls[1]!, f);
    const twice = await exec(process.execPath, [CLI, 'agents', 'resume', f, '--config', file!.path], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
      timeout: 15_000,
    });
    assert.equal(twice.stdout, `${f} was not paused\n`);
  },
);

test(
  'a pause ends by itself after pauseSec, on both instances; refusals older than windowSec no longer count',
  { timeout: TEST_MS },
  async () => {
    const config = configFor({ kind: 'redis', url: redis!.url, initOnEmpty: true }, { refusals: 2, windowSec: 1, pauseSec: 1 });
    const pair = [await start(config), await start(config)];
    const urls = pair.map((wg) => wg.url);
    const h = 'agent-h';
    // One refusal, then the window passes: the next refusal is the first of a new window.
    await refusedWrite(urls[0]!, h);
    await sleep(1300);
    await refusedWrite(urls[1]!, h);
    await runs(urls[0]!, h);
    // The second within the window pauses it, for one second.
    await refusedWrite(urls[0]!, h);
    const pausedUntil = await assertPausedEverywhere(urls, h, 1);

    // Poll (bounded) with allowed writes until one runs: none before paused_until, exactly one runs.
    const before = up!.count(PAY);
    let ranAt = 0;
    const ended = await until(
      async () => {
        const answer = await write(urls[0]!, h, ALLOWED);
        if (answer.res.status === 423) {
          assertPaused(answer, 1);
          return false;
        }
        assert.equal(answer.res.status, 201, answer.text);
        ranAt = Date.now();
        return true;
      },
      { timeoutMs: 5000, intervalMs: 100 },
    );
    assert.ok(ended, 'the pause ended within 5 s');
    assert.ok(ranAt >= pausedUntil - 50, `not before paused_until (ran ${pausedUntil - ranAt} ms early)`);
    assert.equal(up!.count(PAY), before + 1, 'paused writes never ran; the first after the pause did');
    await runs(urls[1]!, h);
  },
);

test('the memory store, one instance: the same breaker, per process', { timeout: TEST_MS }, async () => {
  const config = configFor({ kind: 'memory' });
  const [mem, other] = [await start(config), await start(config)];
  const m = 'agent-m';
  // Leash and upstream refusals count alike.
  await refuse([mem.url], m, 3);
  for (let i = 0; i < 2; i++) assert.equal((await write(mem.url, m, ALLOWED, DECLINED)).res.status, 402);
  await assertPausedEverywhere([mem.url], m);
  assert.equal(pausedLogLines([mem]), 1);
  // Another agent writes; the agent reads.
  await runs(mem.url, 'agent-n');
  const before = up!.count(BALANCE);
  assert.equal((await read(mem.url, m)).res.status, 200);
  assert.equal(up!.count(BALANCE), before + 1);
  // A 429 does not count (a fresh agent: four 429s and it still writes).
  for (let i = 0; i < 4; i++) assert.equal((await write(mem.url, 'agent-o', ALLOWED, LIMITED)).res.status, 429);
  await runs(mem.url, 'agent-o');
  // Per process: another memory-store instance knows nothing of the pause.
  await runs(other.url, m);
  // Resume: the token is needed; with it the agent writes again.
  await expectProblem(await resumeViaAdmin(mem.adminUrl, m), 401, 'unauthorized');
  await assertPausedEverywhere([mem.url], m);
  const resumed = await resumeViaAdmin(mem.adminUrl, m, `Bearer ${TOKEN}`);
  assert.deepEqual(await resumed.json(), { resumed: true, was_paused: true });
  await runs(mem.url, m);
});

test('the memory store: a pause ends by itself after pauseSec', { timeout: TEST_MS }, async () => {
  const mem = await start(configFor({ kind: 'memory' }, { refusals: 2, windowSec: 60, pauseSec: 1 }));
  const p = 'agent-p';
  await refuse([mem.url], p, 2);
  const pausedUntil = await assertPausedEverywhere([mem.url], p, 1);
  // Shortly before paused_until: still paused (when the answer came back before it, it was decided before it).
  await sleep(Math.max(0, pausedUntil - Date.now() - 150));
  const late = await write(mem.url, p, ALLOWED);
  if (Date.now() < pausedUntil) assertPaused(late, 1);
  await sleep(Math.max(0, pausedUntil - Date.now()) + 50);
  await runs(mem.url, p);
});
