import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RetryBudget } from '../../../src/retry/budget.js';
import { retryLoop } from '../../../src/retry/loop.js';

const policy = { maxAttempts: 3, maxElapsedMs: 5000, baseDelayMs: 1, maxDelayMs: 5, budgetRatio: 1, maxCooldownSec: 60 };
type R = { status: number; headers: Record<string, string> };
const answers = (...statuses: number[]) => {
  let i = 0;
  return async (): Promise<R> => ({ status: statuses[Math.min(i++, statuses.length - 1)]!, headers: {} });
};
const base = { budget: new RetryBudget(1), retryable: (r: R) => r.status >= 500, headersOf: (r: R) => r.headers };

test('retries a retryable result until a final one', async () => {
  const out = await retryLoop({ ...base, policy, startedAt: Date.now(), attempt: answers(503, 503, 200) });
  assert.deepEqual([out.result.status, out.attempts, out.stopped], [200, 3, 'final']);
});

test('stops at maxAttempts with the last result', async () => {
  const out = await retryLoop({ ...base, policy, startedAt: Date.now(), attempt: answers(503) });
  assert.deepEqual([out.result.status, out.attempts, out.stopped], [503, 3, 'max_attempts']);
});

test('a wait that would cross maxElapsedMs is not slept: the answer goes back at once', async () => {
  const started = Date.now();
  const out = await retryLoop({
    ...base,
    policy: { ...policy, maxElapsedMs: 1000 },
    startedAt: started,
    attempt: async () => ({ status: 503, headers: { 'retry-after': '120' } }),
  });
  assert.deepEqual([out.attempts, out.stopped, out.retryAfterMs], [1, 'elapsed', 120_000]);
  assert.ok(Date.now() - started < 500);
});

test('an empty budget stops retries; so do mayContinue and beforeRetry', async () => {
  const empty = new RetryBudget(0, () => 0);
  for (let i = 0; i < 10; i++) empty.tryRetry(); // spend the floor
  const out = await retryLoop({ ...base, budget: empty, policy, startedAt: Date.now(), attempt: answers(503) });
  assert.equal(out.stopped, 'budget');
  const halted = await retryLoop({ ...base, policy, startedAt: Date.now(), attempt: answers(503), mayContinue: () => false });
  assert.deepEqual([halted.attempts, halted.stopped], [1, 'halted']);
  const fenced = await retryLoop({ ...base, policy, startedAt: Date.now(), attempt: answers(503), beforeRetry: async () => false });
  assert.deepEqual([fenced.attempts, fenced.stopped], [1, 'halted']);
});

test('an abort during the wait ends the loop at once', async () => {
  const controller = new AbortController();
  const started = Date.now();
  setTimeout(() => controller.abort(), 50);
  const out = await retryLoop({
    ...base,
    policy: { ...policy, maxElapsedMs: 60_000 },
    startedAt: started,
    signal: controller.signal,
    attempt: async () => ({ status: 503, headers: { 'retry-after': '30' } }),
  });
  assert.deepEqual([out.attempts, out.stopped], [1, 'halted']);
  assert.ok(Date.now() - started < 1000);
});
