// The store sentinel's rules (DESIGN §3.12), pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeSentinel, sentinelAckKey, sentinelKey } from '../../../../src/store/redis/sentinel.js';

test('sentinel keys sit under the prefix', () => {
  assert.equal(sentinelKey('wg:'), 'wg:sentinel');
  assert.equal(sentinelAckKey('wg:'), 'wg:sentinel:ack');
});

test('an instance that saw no sentinel yet adopts the one there', () => {
  assert.deepEqual(judgeSentinel({ remembered: null, value: 'v1', initOnEmpty: false }), { kind: 'ready', adopt: 'v1' });
  assert.deepEqual(judgeSentinel({ remembered: null, value: 'v1', initOnEmpty: true }), { kind: 'ready', adopt: 'v1' });
});

test("masters holding different sentinels ('') are never adopted: a loss to acknowledge", () => {
  for (const initOnEmpty of [false, true])
    assert.deepEqual(judgeSentinel({ remembered: null, value: '', initOnEmpty }), { kind: 'not_ready', reason: 'sentinel_changed' });
});

test('no sentinel: initialise only an empty store, and only with initOnEmpty', () => {
  assert.deepEqual(judgeSentinel({ remembered: null, value: null, initOnEmpty: false }), {
    kind: 'not_ready',
    reason: 'store_not_initialised',
  });
  assert.deepEqual(judgeSentinel({ remembered: null, value: null, initOnEmpty: true }), { kind: 'need', fact: 'empty' });
  assert.deepEqual(judgeSentinel({ remembered: null, value: null, initOnEmpty: true, empty: true }), { kind: 'init' });
  assert.deepEqual(judgeSentinel({ remembered: null, value: null, initOnEmpty: true, empty: false }), {
    kind: 'not_ready',
    reason: 'store_not_initialised',
  });
});

test('the remembered sentinel: same → ready; gone → not ready, whatever initOnEmpty says', () => {
  assert.deepEqual(judgeSentinel({ remembered: 'v1', value: 'v1', initOnEmpty: true }), { kind: 'ready', adopt: 'v1' });
  assert.deepEqual(judgeSentinel({ remembered: 'v1', value: null, initOnEmpty: true, empty: true }), {
    kind: 'not_ready',
    reason: 'sentinel_missing',
  });
});

test('a changed sentinel is adopted only when the ack names it', () => {
  assert.deepEqual(judgeSentinel({ remembered: 'v1', value: 'v2', initOnEmpty: true }), { kind: 'need', fact: 'ack' });
  assert.deepEqual(judgeSentinel({ remembered: 'v1', value: 'v2', ack: 'v2', initOnEmpty: true }), { kind: 'ready', adopt: 'v2' });
  assert.deepEqual(judgeSentinel({ remembered: 'v1', value: 'v2', ack: null, initOnEmpty: true }), {
    kind: 'not_ready',
    reason: 'sentinel_changed',
  });
  assert.deepEqual(judgeSentinel({ remembered: 'v1', value: 'v2', ack: 'v3', initOnEmpty: true }), {
    kind: 'not_ready',
    reason: 'sentinel_changed',
  });
});
