// Once any attempt of a record was sent and its outcome is ambiguous, no later answer releases it
// (DESIGN §3.9): the record ends completed or `outcome_unknown`, and the agent is never told "nothing
// ran". Here an upstream that dedupes on the Idempotency-Key (`upstreamHonorsKey: true`) executes the
// first attempt and answers 503, then answers 429 twice without executing. The last answer, a 429,
// "proves" only that attempt did not run — not the first one. So the agent gets 502 outcome_unknown,
// the record is a dead letter, and the agent's retry reaches the upstream under the SAME upstream key
// (which the upstream answers from its own record): one execution in all, for keyless and keyed writes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { expectProblem, post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const REQUEST_LIMIT_MS = 5000;

/** What the emulated API did with one request. */
interface Seen {
  path: string;
  key: string | undefined;
  executed: boolean;
  status: number;
}

let up: CountingUpstream;
let wg: RunningWriteguard;
const seen: Seen[] = [];
/** Requests per key, and the stored answer of each key that executed. */
const perKey = new Map<string, { requests: number; stored: string | null }>();
let executions = 0;
let n = 0;
const uniquePath = () => `/v1/payments-${process.pid}-${++n}`;

before(async () => {
  // An API that dedupes on the key it receives: the first request with a key executes and answers 503
  // (e.g. a load balancer's answer after the backend ran); the next two answer 429 without executing;
  // any later request with a key it executed gets the stored 201, without executing again.
  up = await startUpstream((req, res) => {
    const path = req.url.split('?')[0]!;
    const raw = req.headers['idempotency-key'];
    const key = Array.isArray(raw) ? raw.join(',') : raw;
    const state = perKey.get(key ?? '') ?? { requests: 0, stored: null };
    if (key !== undefined) perKey.set(key, state);
    state.requests++;
    const answer = (status: number, body: string, headers: Record<string, string> = {}, executed = false): void => {
      seen.push({ path, key, executed, status });
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(body);
    };
    if (key === undefined || state.requests === 1) {
      const id = `pay_${++executions}`;
      state.stored = JSON.stringify({ id, status: 'succeeded' });
      return answer(503, '{"error":{"type":"api_error","message":"upstream connect error"}}', {}, true);
    }
    if (state.requests <= 3) return answer(429, '{"error":{"type":"rate_limit_error","message":"slow down"}}', { 'retry-after': '0' });
    return answer(201, state.stored!, { 'idempotent-replayed': 'true' });
  });
  wg = await startWriteguard({
    upstreams: [
      {
        name: 'pay',
        target: up.url,
        idempotency: { upstreamHonorsKey: true },
        retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      },
      // One attempt per request: the ambiguity comes from an earlier request, before a reclaim.
      { name: 'once', prefix: '/once', target: up.url, idempotency: { upstreamHonorsKey: true }, retry: { maxAttempts: 1 } },
    ],
  });
});
after(async () => {
  await wg.close();
  await up.close();
});

interface Letter {
  id: string;
  path: string;
  state: string;
  upstream_key: string;
  key_source: string;
}

async function deadLetterFor(path: string): Promise<Letter | undefined> {
  const res = await fetch(`${wg.adminUrl}/dead-letters`, { signal: AbortSignal.timeout(REQUEST_LIMIT_MS) });
  assert.equal(res.status, 200);
  return ((await res.json()) as { dead_letters: Letter[] }).dead_letters.find((d) => d.path === path);
}

function forPath(path: string): { executed: Seen[]; keys: Set<string | undefined> } {
  const hits = seen.filter((s) => s.path === path);
  return { executed: hits.filter((s) => s.executed), keys: new Set(hits.map((s) => s.key)) };
}

describe('503 (executed), then 429, 429: the final 429 does not release the record', () => {
  const retrySignals: Array<Record<string, string>> = [{ 'x-stainless-retry-count': '1' }, { 'idempotency-intent': 'retry' }];
  for (const retrySignal of retrySignals) {
    test(`keyless (derived key): 502 outcome_unknown, a dead letter, and the retry (${Object.keys(retrySignal)[0]}) goes out under the same upstream key — 1 execution`, async () => {
      const path = uniquePath();
      const body = '{"amount":1250,"currency":"usd","destination":"acct_ambiguous"}';

      const first = await post(`${wg.url}${path}`, body, {}, AbortSignal.timeout(REQUEST_LIMIT_MS));
      const firstStatus = first.status;
      const firstText = await first.clone().text();
      const letter = await deadLetterFor(path);
      const retry = await post(`${wg.url}${path}`, body, retrySignal, AbortSignal.timeout(REQUEST_LIMIT_MS));
      const retryStatus = retry.status;
      const retryText = await retry.text();
      const { executed, keys } = forPath(path);

      // One summary first, so a failure shows every symptom at once.
      assert.deepEqual(
        { first: firstStatus, deadLettered: letter?.state ?? null, executions: executed.length, upstreamKeys: keys.size },
        { first: 502, deadLettered: 'outcome_unknown', executions: 1, upstreamKeys: 1 },
        `first answer ${firstStatus} ${firstText}; retry answer ${retryStatus} ${retryText}; upstream saw ${JSON.stringify(seen.filter((s) => s.path === path))}`,
      );
      await expectProblem(first, 502, 'outcome_unknown');
      assert.equal(letter!.key_source, 'derived');
      assert.equal(letter!.upstream_key, executed[0]!.key, 'the dead letter names the key the upstream executed');
      assert.notEqual(retryStatus, 429, 'never "nothing ran" after an ambiguous attempt');
      assert.equal(retryStatus, 201, `the upstream's own stored answer reaches the agent: ${retryText}`);
    });
  }

  test('keyed (client Idempotency-Key): 502 outcome_unknown, never 429; a dead letter; the retry reuses the key — 1 execution', async () => {
    const path = uniquePath();
    const key = `amb-${process.pid}-${n}`;
    const body = '{"amount":1300,"currency":"usd","destination":"acct_ambiguous"}';

    const first = await post(`${wg.url}${path}`, body, { 'idempotency-key': key }, AbortSignal.timeout(REQUEST_LIMIT_MS));
    const firstStatus = first.status;
    const firstText = await first.clone().text();
    const letter = await deadLetterFor(path);
    const retry = await post(`${wg.url}${path}`, body, { 'idempotency-key': key }, AbortSignal.timeout(REQUEST_LIMIT_MS));
    const retryStatus = retry.status;
    const retryText = await retry.text();
    const { executed, keys } = forPath(path);

    assert.deepEqual(
      { first: firstStatus, deadLettered: letter?.state ?? null, executions: executed.length, upstreamKeys: [...keys] },
      { first: 502, deadLettered: 'outcome_unknown', executions: 1, upstreamKeys: [key] },
      `first answer ${firstStatus} ${firstText}; retry answer ${retryStatus} ${retryText}`,
    );
    assert.notEqual(firstStatus, 429, 'never "nothing ran" after an ambiguous attempt');
    const problem = await expectProblem(first, 502, 'outcome_unknown');
    assert.equal(problem.idempotency_key, key);
    assert.equal(letter!.upstream_key, key);
    assert.notEqual(retryStatus, 429);
    assert.equal(retryStatus, 201, retryText);
  });
});

test('a reclaimed record that may have run before is not released by a 429 on its next attempt', async () => {
  const path = uniquePath();
  const key = `reclaim-${process.pid}-${++n}`;
  const send = () => post(`${wg.url}/once${path}`, '{"amount":42}', { 'idempotency-key': key });
  // Attempt 1 executes and answers 503: an upstream that dedupes on the key gets it passed back.
  const first = await send();
  assert.equal(first.status, 503, await first.text());
  // The retry reclaims the unknown record and is answered 429: that proves only it did not run.
  const second = await send();
  await expectProblem(second, 502, 'outcome_unknown');
  const letters = (await (await fetch(`${wg.adminUrl}/dead-letters`)).json()) as { dead_letters: Letter[] };
  assert.ok(
    letters.dead_letters.some((l) => l.path === `/once${path}` && l.state === 'outcome_unknown'),
    'still a dead letter',
  );
  // Another 429, then the upstream's own stored answer under the same key: one execution in all.
  await expectProblem(await send(), 502, 'outcome_unknown');
  const last = await send();
  assert.equal(last.status, 201, await last.text());
  assert.equal(seen.filter((s) => s.path === path && s.executed).length, 1);
  assert.deepEqual(new Set(seen.filter((s) => s.path === path).map((s) => s.key)), new Set([key]));
});
