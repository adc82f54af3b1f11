// Which operation a write is (src/idempotency/operation.ts, pure): a client key joins; without one,
// `missing` rejects, skips, makes a random key or derives one from the fingerprint; a derived key is
// fresh (an existing record is a possible duplicate) unless the request signals a retry, and
// `Idempotency-Intent: new` starts a deliberate operation (or is the SDK's retry of one).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { IdempotencyConfig } from '../../../src/config/schema.js';
import { WriteguardError } from '../../../src/errors.js';
import { chooseOperation, deliberateKey, type Signals } from '../../../src/idempotency/operation.js';

type Idem = Pick<IdempotencyConfig, 'missing' | 'header' | 'keyFrom'>;

const idem = (missing: Idem['missing'], over: Partial<Idem> = {}): Idem => ({
  missing,
  header: 'Idempotency-Key',
  keyFrom: ['header'],
  ...over,
});
/** A plain write: no `Idempotency-Intent`, no `X-Stainless-Retry-Count`. */
const PLAIN: Signals = { intent: undefined, sdkRetry: false };
/** `X-Stainless-Retry-Count` ≥ 1. */
const SDK_RETRY: Signals = { intent: undefined, sdkRetry: true };
const INTENT_RETRY: Signals = { intent: 'retry', sdkRetry: false };
const INTENT_NEW: Signals = { intent: 'new', sdkRetry: false };
const INTENT_NEW_SDK_RETRY: Signals = { intent: 'new', sdkRetry: true };
const ALL_SIGNALS = [PLAIN, SDK_RETRY, INTENT_RETRY, INTENT_NEW, INTENT_NEW_SDK_RETRY];

const DERIVED = /^wgd_[A-Za-z0-9_-]{32}$/;
const UUID = /^wgu_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

test('a client key (header or body field) joins, whatever `missing` and the signals say', () => {
  for (const missing of ['derive', 'uuid', 'reject', 'allow'] as const) {
    for (const signals of ALL_SIGNALS) {
      assert.deepEqual(chooseOperation({ key: 'order-42', source: 'client' }, idem(missing), 'fp', signals), {
        key: 'order-42',
        source: 'client',
        mode: 'join',
      });
      assert.deepEqual(chooseOperation({ key: 'ref-7', source: 'body' }, idem(missing), 'fp', signals), {
        key: 'ref-7',
        source: 'body',
        mode: 'join',
      });
    }
  }
});

test('missing: reject throws idempotency_key_missing naming the header (and the other sources)', () => {
  assert.throws(
    () => chooseOperation(null, idem('reject', { header: 'X-Request-Key' }), 'fp', PLAIN),
    (e: unknown) => {
      assert.ok(e instanceof WriteguardError);
      assert.equal(e.code, 'idempotency_key_missing');
      assert.equal(e.status, 400);
      assert.match(e.message, /X-Request-Key/);
      return true;
    },
  );
  assert.throws(
    () => chooseOperation(null, idem('reject', { keyFrom: ['header', 'body:referenceId'] }), 'fp', PLAIN),
    (e: unknown) => {
      assert.ok(e instanceof WriteguardError);
      assert.equal(e.code, 'idempotency_key_missing');
      assert.match(e.message, /Idempotency-Key/);
      assert.match(e.message, /body:referenceId/);
      return true;
    },
  );
});

test('missing: allow → null (forwarded unprotected), whatever the signals', () => {
  for (const signals of ALL_SIGNALS) assert.equal(chooseOperation(null, idem('allow'), 'fp', signals), null);
});

test("missing: uuid → a fresh wgu_ key each time, joined (it protects writeguard's own attempts only)", () => {
  const keys = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const op = chooseOperation(null, idem('uuid'), 'the same fingerprint', PLAIN);
    assert.ok(op !== null);
    assert.match(op.key, UUID);
    assert.equal(op.source, 'uuid');
    assert.equal(op.mode, 'join');
    assert.equal(op.intentNew, undefined);
    keys.add(op.key);
  }
  assert.equal(keys.size, 50, 'never the same key twice');
});

test('missing: derive → the same wgd_ key for the same fingerprint, another for another', () => {
  const a = chooseOperation(null, idem('derive'), 'fp-a', PLAIN);
  const again = chooseOperation(null, idem('derive'), 'fp-a', PLAIN);
  const b = chooseOperation(null, idem('derive'), 'fp-b', PLAIN);
  assert.ok(a !== null && again !== null && b !== null);
  assert.match(a.key, DERIVED);
  assert.equal(a.source, 'derived');
  assert.equal(again.key, a.key);
  assert.notEqual(b.key, a.key);
});

test('derive without a retry signal is fresh: an existing record is a possible duplicate', () => {
  assert.deepEqual(chooseOperation(null, idem('derive'), 'fp', PLAIN), {
    key: chooseOperation(null, idem('derive'), 'fp', SDK_RETRY)!.key,
    source: 'derived',
    mode: 'fresh',
  });
  // An intent other than retry or new is no signal.
  assert.equal(chooseOperation(null, idem('derive'), 'fp', { intent: 'whatever', sdkRetry: false })!.mode, 'fresh');
});

test('derive with X-Stainless-Retry-Count or Idempotency-Intent: retry joins', () => {
  for (const signals of [SDK_RETRY, INTENT_RETRY, { intent: 'retry', sdkRetry: true }]) {
    const op = chooseOperation(null, idem('derive'), 'fp', signals);
    assert.ok(op !== null);
    assert.equal(op.mode, 'join', JSON.stringify(signals));
    assert.equal(op.source, 'derived');
    assert.equal(op.intentNew, undefined);
  }
});

test('Idempotency-Intent: new → intentNew start; with an SDK retry signal → intentNew retry', () => {
  const start = chooseOperation(null, idem('derive'), 'fp', INTENT_NEW);
  const retry = chooseOperation(null, idem('derive'), 'fp', INTENT_NEW_SDK_RETRY);
  const plainKey = chooseOperation(null, idem('derive'), 'fp', PLAIN)!.key;
  assert.deepEqual(start, { key: plainKey, source: 'derived', mode: 'join', intentNew: 'start' });
  assert.deepEqual(retry, { key: plainKey, source: 'derived', mode: 'join', intentNew: 'retry' });
});

test('Idempotency-Intent: new only matters to a derived key: uuid and client keys ignore it', () => {
  assert.equal(chooseOperation(null, idem('uuid'), 'fp', INTENT_NEW)!.intentNew, undefined);
  assert.equal(chooseOperation({ key: 'k', source: 'client' }, idem('derive'), 'fp', INTENT_NEW)!.intentNew, undefined);
});

test('property: the derived key is a function of the fingerprint only (not of the signals or the header settings)', () => {
  const signals = fc.constantFrom(...ALL_SIGNALS);
  const settings = fc.record({
    header: fc.constantFrom('Idempotency-Key', 'X-Request-Key'),
    keyFrom: fc.constantFrom<Idem['keyFrom']>(['header'], ['header', 'body:referenceId']),
  });
  fc.assert(
    fc.property(fc.string(), signals, signals, settings, settings, (fp, s1, s2, c1, c2) => {
      const one = chooseOperation(null, idem('derive', c1), fp, s1);
      const two = chooseOperation(null, idem('derive', c2), fp, s2);
      assert.ok(one !== null && two !== null);
      assert.match(one.key, DERIVED);
      assert.equal(one.key, two.key);
    }),
  );
});

test('property: distinct fingerprints derive distinct keys', () => {
  fc.assert(
    fc.property(fc.string(), fc.string(), (a, b) => {
      fc.pre(a !== b);
      assert.notEqual(chooseOperation(null, idem('derive'), a, PLAIN)!.key, chooseOperation(null, idem('derive'), b, PLAIN)!.key);
    }),
  );
});

test('deliberateKey: the derived key plus a fresh suffix each time', () => {
  const derived = chooseOperation(null, idem('derive'), 'fp', INTENT_NEW)!.key;
  const one = deliberateKey(derived);
  const two = deliberateKey(derived);
  assert.ok(one.startsWith(`${derived}.`), one);
  assert.ok(two.startsWith(`${derived}.`), two);
  assert.notEqual(one, two);
});
