import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RetryBudget } from '../../../src/retry/budget.js';

test('retries are capped at the ratio of recent requests, with a floor of one per second', () => {
  let now = 1_000_000;
  const budget = new RetryBudget(0.2, () => now);
  // 1000 requests in one second: 200 retries allowed (20 %), not one more.
  for (let i = 0; i < 1000; i++) budget.recordRequest();
  let granted = 0;
  while (budget.tryRetry() && granted < 10_000) granted++;
  assert.equal(granted, 200);
  // Few requests: the floor (1/s over the 10 s window) still allows some retries.
  now += 60_000;
  const quiet = new RetryBudget(0.2, () => now);
  quiet.recordRequest();
  granted = 0;
  while (quiet.tryRetry() && granted < 10_000) granted++;
  assert.equal(granted, 10);
});

test('the window slides: old requests and retries stop counting', () => {
  let now = 5_000_000;
  const budget = new RetryBudget(0.5, () => now);
  for (let i = 0; i < 100; i++) budget.recordRequest();
  for (let i = 0; i < 50; i++) assert.equal(budget.tryRetry(), true);
  assert.equal(budget.tryRetry(), false);
  now += 11_000;
  // All old traffic has left the window: back to the floor.
  let granted = 0;
  while (budget.tryRetry() && granted < 1000) granted++;
  assert.equal(granted, 10);
});
