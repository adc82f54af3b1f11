// The stored answer's form in Redis: status and headers as a line of JSON, then the body's raw bytes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseResponse, responseArg } from '../../../../src/store/redis/codec.js';
import type { StoredResponse } from '../../../../src/store/store.js';

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
