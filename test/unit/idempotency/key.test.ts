import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WriteguardError } from '../../../src/errors.js';
import { findKey, keyHash, validateKey } from '../../../src/idempotency/key.js';

const invalid = (fn: () => unknown) =>
  assert.throws(fn, (e: unknown) => e instanceof WriteguardError && e.code === 'idempotency_key_invalid');

test('client keys: 1-255 visible ASCII, quoted sf-strings unquoted to their bare form', () => {
  assert.equal(validateKey('order-42', 'h'), 'order-42');
  assert.equal(validateKey('"order-42"', 'h'), 'order-42');
  assert.equal(validateKey('"a\\"b\\\\c"', 'h'), 'a"b\\c');
  assert.equal(validateKey('x'.repeat(255), 'h').length, 255);
  invalid(() => validateKey('x'.repeat(256), 'h'));
  invalid(() => validateKey('', 'h'));
  invalid(() => validateKey('""', 'h'));
  invalid(() => validateKey('has space', 'h'));
  invalid(() => validateKey('tab\there', 'h'));
  invalid(() => validateKey('caf\u00e9', 'h'));
  invalid(() => validateKey('"unterminated\\"', 'h'));
  invalid(() => validateKey('"bad\\escape"', 'h'));
});

test('keyFrom: header first, then a JSON body field; two headers are refused', () => {
  const json = () => ({ referenceId: 'ref-7', meta: { idempotency_key: 'mcp-1' } });
  assert.deepEqual(findKey({ headerValues: ['k1'], headerName: 'Idempotency-Key', keyFrom: ['header', 'body:referenceId'], json }), {
    key: 'k1',
    source: 'client',
  });
  assert.deepEqual(findKey({ headerValues: undefined, headerName: 'Idempotency-Key', keyFrom: ['header', 'body:referenceId'], json }), {
    key: 'ref-7',
    source: 'body',
  });
  assert.deepEqual(findKey({ headerValues: undefined, headerName: 'Idempotency-Key', keyFrom: ['body:meta.idempotency_key'], json }), {
    key: 'mcp-1',
    source: 'body',
  });
  assert.equal(findKey({ headerValues: undefined, headerName: 'Idempotency-Key', keyFrom: ['header', 'body:absent'], json }), null);
  invalid(() => findKey({ headerValues: ['a', 'b'], headerName: 'Idempotency-Key', keyFrom: ['header'], json }));
});

test('the body is parsed only when a body source is reached', () => {
  let parsed = 0;
  const json = () => {
    parsed++;
    return {};
  };
  findKey({ headerValues: ['k'], headerName: 'Idempotency-Key', keyFrom: ['header', 'body:id'], json });
  assert.equal(parsed, 0);
});

test('records are addressed by a hash of the key, never the key', () => {
  assert.match(keyHash('secret-key'), /^[0-9a-f]{64}$/);
  assert.notEqual(keyHash('a'), keyHash('b'));
});

test('a key hashes as it did in earlier versions (the records it addresses are found after an upgrade)', () => {
  assert.equal(keyHash('order-123-ü'), 'b42443bfb3a2a35a676f867096415eb647a0b14c91303b2a131c1350e4131853');
});
