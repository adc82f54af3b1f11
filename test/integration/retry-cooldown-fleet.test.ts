// Fleet cooldown: two writeguard processes sharing one Redis, one upstream, agents told apart by
// x-agent-id. After the upstream answers agent A with a 429 and a 2 s reset through process 1, both
// processes hold A's reads and writes to that upstream (writeguard's own 429 rate_limited with a
// Retry-After; maxElapsedMs 0, so nothing waits) and the upstream receives nothing for A until the
// reset, while agent B goes through as usual. After the reset A passes again.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { writeConfigFile } from '../helpers/config-file.js';
import { expectProblem, post } from '../helpers/problem.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { echo, startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { launchWriteguard, type WriteguardProcess } from '../helpers/writeguard.js';

const A = 'agent-a';
const B = 'agent-b';
const RESET_SEC = 2;

let redis: RedisServer;
let up: CountingUpstream;
let file: { path: string; remove(): void };
const fleet: WriteguardProcess[] = [];
let p1: string;
let p2: string;
/** Whether the upstream already rate-limited agent A (only its first request is refused). */
let limitedA = false;
/** Which agent each upstream request was for, and when it arrived. */
const arrivals: { agent: string | undefined; at: number }[] = [];

before(async () => {
  redis = await startRedis();
  up = await startUpstream((req, res) => {
    arrivals.push({ agent: req.headers['x-agent-id'] as string | undefined, at: Date.now() });
    if (req.headers['x-agent-id'] === A && !limitedA) {
      limitedA = true;
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(RESET_SEC) });
      res.end('{"error":{"type":"rate_limit_error","message":"agent-a: too many requests"}}');
      return;
    }
    return echo(req, res);
  });
  file = writeConfigFile({
    listen: { port: 0 },
    admin: { port: 0 },
    store: { kind: 'redis', url: redis.url, initOnEmpty: true },
    identity: { agentIdHeader: 'x-agent-id' },
    upstreams: [{ name: 'api', target: up.url, retry: { maxElapsedMs: 0 } }],
  });
  for (let i = 0; i < 2; i++) fleet.push(launchWriteguard(['--config', file.path]));
  const urls = await Promise.all(fleet.map(async (wg) => (await wg.ready).listen[0]!));
  p1 = urls[0]!;
  p2 = urls[1]!;
  // The cooldown subscription connects after the listeners are up: give it a moment.
  await sleep(300);
});
after(async () => {
  for (const wg of fleet) wg.kill('SIGKILL');
  await Promise.all(fleet.map((wg) => wg.exited));
  await up.close();
  await redis.stop();
  file.remove();
});

const forAgent = (agent: string): number => up.received.filter((r) => r.headers['x-agent-id'] === agent).length;

let seq = 0;
function write(url: string, agent: string): Promise<Response> {
  seq++;
  return post(`${url}/v1/points`, `{"points":${seq}}`, { 'x-agent-id': agent, 'idempotency-key': `cool-${agent}-${seq}` });
}
function read(url: string, agent: string): Promise<Response> {
  return fetch(`${url}/v1/points/balance`, { headers: { 'x-agent-id': agent } });
}

async function expectCooledDown(res: Response, where: string): Promise<void> {
  assert.equal(res.headers.get('x-should-retry'), 'false', where);
  assert.equal(res.headers.get('stripe-should-retry'), 'false', where);
  assert.equal(res.headers.get('x-writeguard-attempts'), '0', `${where}: nothing was sent`);
  const retryAfter = Number(res.headers.get('retry-after'));
  assert.ok(retryAfter >= 1 && retryAfter <= RESET_SEC, `${where}: Retry-After ${res.headers.get('retry-after')}`);
  const problem = await expectProblem(res, 429, 'rate_limited');
  assert.equal(problem.error.type, 'rate_limit_error');
}

test('a 429 for agent A through process 1 holds A on both processes until the reset; agent B is unaffected', async () => {
  // Both processes serve both agents before anything is rate-limited.
  for (const url of [p1, p2]) assert.equal((await read(url, B)).status, 200);

  const first = await write(p1, A);
  const t429 = Date.now();
  const body = await first.text();
  assert.equal(first.status, 429, body);
  assert.equal(JSON.parse(body).error.message, 'agent-a: too many requests', "the upstream's own 429, passed back at once");
  assert.equal(first.headers.get('retry-after'), String(RESET_SEC));
  assert.equal(first.headers.get('x-writeguard-attempts'), '1');
  assert.equal(forAgent(A), 1);
  // The upstream sent the 429 before writeguard saw it: every cooldown ends no sooner than this + 2 s.
  const limitedAt = arrivals.find((a) => a.agent === A)!.at;
  const resetAt = limitedAt + RESET_SEC * 1000;
  assert.ok(t429 - limitedAt < 1000, `answered ${t429 - limitedAt} ms after the upstream's 429: the wait was slept`);

  // The announcement reaches process 2 over Redis pub/sub.
  await sleep(150);
  const bBefore = forAgent(B);
  let rounds = 0;
  let bSent = 0;
  /** When each process was last seen refusing A: its cooldown ends at most 2 s after it heard of it. */
  const refusedAt = [0, 0];
  // Rounds start until 1.5 s after the 429. A request answered after the reset may go through
  // (a loaded machine can hold the last round that long); one answered before it must be refused.
  while (Date.now() < limitedAt + 1500) {
    const sent = [read(p1, A), read(p2, A), write(p1, A), write(p2, A)];
    const aAnswers = await Promise.all(
      sent.map(async (pending, i) => {
        const res = await pending;
        return { res, at: Date.now(), via: i % 2, what: `A ${i < 2 ? 'read' : 'write'} via process ${(i % 2) + 1}` };
      }),
    );
    const bAnswers = await Promise.all([read(p1, B), write(p2, B), read(p2, B), write(p1, B)]);
    rounds++;
    bSent += bAnswers.length;
    for (const { res, at, via, what } of aAnswers) {
      if (at >= resetAt) {
        await res.arrayBuffer();
        continue;
      }
      await expectCooledDown(res, `${what}, ${at - limitedAt} ms after the 429`);
      refusedAt[via] = Math.max(refusedAt[via]!, at);
    }
    assert.deepEqual(
      bAnswers.map((r) => r.status),
      [200, 201, 200, 201],
      `B, ${Date.now() - limitedAt} ms after the 429`,
    );
    assert.deepEqual(
      bAnswers.map((r) => r.headers.get('x-writeguard-attempts')),
      ['1', '1', '1', '1'],
    );
    await Promise.all(bAnswers.map((r) => r.arrayBuffer()));
    await sleep(100);
  }
  assert.ok(rounds >= 2, `only ${rounds} rounds in the window`);
  assert.ok(refusedAt[0]! > 0 && refusedAt[1]! > 0, 'both processes refused A');
  const early = arrivals.filter((a) => a.agent === A && a.at > limitedAt && a.at < resetAt);
  assert.deepEqual(early, [], 'the upstream received nothing for A until the reset');
  assert.equal(forAgent(B), bBefore + bSent, 'every request of B reached the upstream');

  // After the reset: each process had heard of the cooldown by the time it last refused A.
  await sleep(Math.max(0, Math.max(...refusedAt) + RESET_SEC * 1000 + 100 - Date.now()));
  const aBefore = forAgent(A);
  const answers = await Promise.all([read(p1, A), read(p2, A), write(p1, A), write(p2, A)]);
  assert.deepEqual(
    answers.map((r) => r.status),
    [200, 200, 201, 201],
  );
  assert.deepEqual(
    answers.map((r) => r.headers.get('x-writeguard-attempts')),
    ['1', '1', '1', '1'],
  );
  await Promise.all(answers.map((r) => r.arrayBuffer()));
  assert.equal(forAgent(A), aBefore + 4);
});
