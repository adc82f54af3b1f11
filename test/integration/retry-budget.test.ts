// The retry budget: an upstream answering 503 to every read is not hit with a retry storm. Retries
// stay within budgetRatio of recent requests (floor: 1 retry/s per instance over a 10 s window), so
// 200 reads with maxAttempts 3 cost about 200 × 1.2 attempts, not 600.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const N = 200;
const CONCURRENCY = 20;
const RATIO = 0.2;
const MAX_ATTEMPTS = 3;
/** budget.ts: 1 retry/s over a 10 s window. */
const FLOOR = 10;

let up: CountingUpstream;
let wg: RunningWriteguard;

before(async () => {
  up = await startUpstream((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"error":{"type":"api_error","message":"unavailable"}}');
  });
  wg = await startWriteguard({
    upstreams: [{ name: 'api', target: up.url, retry: { budgetRatio: RATIO, maxAttempts: MAX_ATTEMPTS, baseDelayMs: 1, maxDelayMs: 5 } }],
  });
});
after(async () => {
  await wg.close();
  await up.close();
});

test(`${N} reads against an upstream answering 503: attempts stay within N × (1 + ${RATIO}) + the floor`, async (t) => {
  const started = Date.now();
  const attempts: number[] = [];
  const statuses: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < N) {
        const i = next++;
        const res = await fetch(`${wg.url}/v1/accounts/acct_${i}`);
        await res.arrayBuffer();
        statuses.push(res.status);
        attempts.push(Number(res.headers.get('x-writeguard-attempts')));
      }
    }),
  );
  const elapsedSec = Math.ceil((Date.now() - started) / 1000);

  assert.equal(statuses.length, N);
  assert.ok(
    statuses.every((s) => s === 503),
    "every read ends with the upstream's 503",
  );
  assert.ok(
    attempts.every((a) => a >= 1 && a <= MAX_ATTEMPTS),
    `attempts per read within 1..${MAX_ATTEMPTS}`,
  );
  // What writeguard reports matches what the upstream received.
  const total = up.count();
  assert.equal(
    attempts.reduce((a, b) => a + b, 0),
    total,
  );

  const bound = N * (1 + RATIO) + FLOOR + elapsedSec;
  t.diagnostic(`${total} upstream attempts for ${N} reads in ${elapsedSec} s (bound ${bound}, unbudgeted ${N * MAX_ATTEMPTS})`);
  assert.ok(total >= N, `every read was attempted at least once (${total})`);
  assert.ok(total <= bound, `${total} upstream attempts for ${N} reads; the budget allows ≤ ${bound}`);
  assert.ok(total < N * MAX_ATTEMPTS, `without the budget it would have been ${N * MAX_ATTEMPTS}`);

  // Once the budget is spent, reads are not retried: most answers took a single attempt.
  const single = attempts.filter((a) => a === 1).length;
  assert.ok(single >= N - (total - N), `${single} of ${N} answers took 1 attempt`);
  assert.ok(single > N / 2, `${single} of ${N} answers took 1 attempt`);
  assert.equal(
    attempts.slice(-N / 4).filter((a) => a === 1).length >= N / 4 - FLOOR,
    true,
    'the last quarter is (almost) all single attempts',
  );
});
