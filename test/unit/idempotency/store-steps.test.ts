// Store steps on the write path: a failure becomes the agent's error; a step whose reply was lost is
// resent once the store is ready again, and one the store refused before applying is not waited on;
// with a request span, each step is an event on it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WriteguardError } from '../../../src/errors.js';
import { storeSteps } from '../../../src/idempotency/store-steps.js';
import { createLogger } from '../../../src/observe/logger.js';
import { Metrics } from '../../../src/observe/metrics.js';
import type { RequestTrace } from '../../../src/observe/trace-types.js';
import { MemoryStore } from '../../../src/store/index.js';
import { StoreFullError, StoreUnavailableError } from '../../../src/store/store.js';

function setup(ready: boolean) {
  const store = new MemoryStore();
  let readinessWaits = 0;
  store.whenReady = async () => {
    readinessWaits++;
    return ready;
  };
  const steps = storeSteps(store, new Metrics(async () => 0), createLogger({ level: 'silent' }), 50);
  return { steps, waits: () => readinessWaits, close: () => store.close() };
}

test('a step whose reply may have been lost is resent once the store is ready again', async () => {
  const { steps, waits, close } = setup(true);
  let calls = 0;
  const result = await steps.resendable('begin', async () => {
    if (++calls === 1) throw new StoreUnavailableError('connection lost');
    return 'acquired';
  });
  assert.deepEqual([result, calls, waits()], ['acquired', 2, 1]);
  await close();
});

test('a step the store refused before applying is neither waited on nor resent', async () => {
  const { steps, waits, close } = setup(true);
  let calls = 0;
  const refused = new StoreUnavailableError('sentinel changed', { mayHaveApplied: false });
  await assert.rejects(
    steps.resendable('begin', async () => {
      calls++;
      throw refused;
    }),
    refused,
  );
  assert.deepEqual([calls, waits()], [1, 0]);
  await close();
});

test('failures become the errors the agent reads: store_full, or store_unavailable saying why', async () => {
  const { steps, close } = setup(false);
  await assert.rejects(
    steps.step('begin', () => Promise.reject(new StoreFullError('full')), 'k1', null),
    (err: unknown) => err instanceof WriteguardError && err.code === 'store_full' && err.idempotencyKey === 'k1',
  );
  await assert.rejects(
    steps.step('begin', () => Promise.reject(new StoreUnavailableError('down')), 'k2', null),
    (err: unknown) => err instanceof WriteguardError && err.code === 'store_unavailable' && /was not sent/.test(err.message),
  );
  await close();
});

test('with a request span, each step is one event on it: its name, its start and whether it failed', async () => {
  const { steps, close } = setup(true);
  const events: { op: string; startedAt: number; failed: boolean }[] = [];
  const trace = { storeStep: (op: string, startedAt: number, failed: boolean) => void events.push({ op, startedAt, failed }) };
  const before = performance.now();
  assert.equal(await steps.step('begin', async () => 'acquired', 'k1', trace as unknown as RequestTrace), 'acquired');
  await assert.rejects(
    steps.step('markSent', () => Promise.reject(new StoreUnavailableError('down')), 'k1', trace as unknown as RequestTrace),
  );
  await assert.rejects(
    steps.timed('finish', () => Promise.reject(new Error('lost')), trace as unknown as RequestTrace),
    /lost/,
  );
  assert.deepEqual(
    events.map((e) => [e.op, e.failed]),
    [
      ['begin', false],
      ['markSent', true],
      ['finish', true],
    ],
  );
  assert.ok(events.every((e) => e.startedAt >= before && e.startedAt <= performance.now()));
  await close();
});
