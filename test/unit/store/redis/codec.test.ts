// The stored answer's form in Redis: status and headers as a line of JSON, then the body's raw bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { beginArgs, parseResponse, responseArg } from '../../../../src/store/redis/codec.js';
import type { StoredResponse } from '../../../../src/store/store.js';
import { input } from '../../../helpers/store-contract.js';

const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

test('a stored answer travels as its raw bytes and comes back exact, newlines and all', () => {
  for (const body of [every, Buffer.from('\n\n{"a":"\\n"}\n'), Buffer.alloc(0)]) {
    const response: StoredResponse = { status: 201, headers: { 'content-type': 'application/json', vary: ['a', 'b\nc'] }, body };
    const arg = responseArg(response);
    assert.ok(Buffer.isBuffer(arg));
    assert.ok(arg.subarray(arg.length - body.length).equals(body), 'the body is the value tail, unencoded');
    assert.ok(body.length === 0 || !arg.includes(body.toString('base64')));
    assert.deepEqual(parseResponse(arg), response);
  }
  assert.equal(responseArg(null), '');
  assert.equal(parseResponse(null), null);
});

test('an answer stored by the previous version (JSON, the body base64 inside) is still read', () => {
  const legacy = Buffer.from(JSON.stringify({ status: 200, headers: { 'request-id': 'req_9' }, body: every.toString('base64') }));
  assert.deepEqual(parseResponse(legacy), { status: 200, headers: { 'request-id': 'req_9' }, body: every });
});

test('a value that is neither form is an error, not an empty answer', () => {
  assert.throws(() => parseResponse(Buffer.from('garbage')));
  assert.throws(() => parseResponse(Buffer.from('not json\nbody')));
});

test("a plain write's begin stops at the sentinel; a leashed one sends the leash's arguments, its charges last", () => {
  const key = { scope: 'a', upstream: 'pay', keyHash: 'k' };
  // beginArgs is ARGV[2..]: ARGV[9] (the sentinel) is its eighth element.
  const plain = beginArgs(input(key), 'sentinel-1');
  assert.equal(plain.length, 8);
  assert.equal(plain.at(-1), 'sentinel-1');
  const charge = { bucket: 'daily:2026-12-07', amount: 1250, limit: 100_000, resetAt: 1_796_688_000_000 };
  const leashed = beginArgs(input(key, { intent: { hash: 'h', windowMs: 600_000, mode: 'guard' }, charges: [charge] }), 'sentinel-1');
  assert.deepEqual(leashed.slice(8), [
    'guard',
    'h',
    '600000',
    '',
    '0',
    '',
    '0',
    '1',
    'daily:2026-12-07',
    '1250',
    '100000',
    '1796688000000',
  ]);
  // Any one leash part brings all of ARGV[10..17]: the script reads them by position.
  assert.equal(beginArgs(input(key, { approval: { amount: 5000, ttlMs: 60_000 } }), 's').length, 16);
});
