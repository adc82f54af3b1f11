// What the last attempt of a write proves, given what earlier attempts may have done (DESIGN §3.9), pure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decideOutcome, writeRetryable } from '../../../src/idempotency/outcome.js';
import type { AttemptResult } from '../../../src/http/attempt.js';

const rules = { notExecutedStatuses: [429], upstreamHonorsKey: false };
const honours = { ...rules, upstreamHonorsKey: true };
const answer = (status: number): AttemptResult => ({ kind: 'answer', status, headers: {}, body: Buffer.alloc(0) });
const refused: AttemptResult = { kind: 'not_sent', reason: 'ECONNREFUSED' };
const reset: AttemptResult = { kind: 'no_answer', reason: 'ECONNRESET', timedOut: false };

test('alone, an answer decides: definitive → completed, not executed → released, ambiguous → unknown', () => {
  assert.deepEqual(decideOutcome(answer(201), rules, null), { kind: 'completed' });
  assert.deepEqual(decideOutcome(answer(422), rules, null), { kind: 'completed' });
  assert.deepEqual(decideOutcome(answer(429), rules, null), { kind: 'released' });
  assert.deepEqual(decideOutcome(answer(401), rules, null), { kind: 'released' });
  assert.deepEqual(decideOutcome(refused, rules, null), { kind: 'released' });
  assert.deepEqual(decideOutcome(answer(503), rules, null), { kind: 'unknown', reason: 'status 503' });
  assert.deepEqual(decideOutcome(reset, rules, null), { kind: 'unknown', reason: 'ECONNRESET' });
});

test('after an attempt that may have run, "nothing ran" answers do not release: the record stays unknown', () => {
  const earlier = 'attempt 1 may have run (status 503)';
  for (const last of [answer(429), answer(401), refused]) {
    const decided = decideOutcome(last, honours, earlier);
    assert.equal(decided.kind, 'unknown');
    assert.match(decided.kind === 'unknown' ? decided.reason : '', /attempt 1 may have run/);
  }
  assert.deepEqual(decideOutcome(answer(201), honours, earlier), { kind: 'completed' }, 'a definitive answer still settles it');
});

test('property: with an earlier ambiguous attempt, no result ever releases the record', () => {
  const results = fc.oneof(fc.integer({ min: 200, max: 599 }).map(answer), fc.constant(refused), fc.constant(reset));
  fc.assert(
    fc.property(results, fc.boolean(), (result, honoursKey) => {
      assert.notEqual(decideOutcome(result, { ...rules, upstreamHonorsKey: honoursKey }, 'earlier').kind, 'released');
    }),
  );
});

test('retries: proof of nothing run (never a 401), or ambiguity only when the upstream dedupes on the key', () => {
  assert.equal(writeRetryable(answer(429), rules), true);
  assert.equal(writeRetryable(refused, rules), true);
  assert.equal(writeRetryable(answer(401), rules), false);
  assert.equal(writeRetryable(answer(503), rules), false);
  assert.equal(writeRetryable(answer(503), honours), true);
  assert.equal(writeRetryable(reset, rules), false);
  assert.equal(writeRetryable(reset, honours), true);
  assert.equal(writeRetryable(answer(201), honours), false);
});
