import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalJson, fingerprint, type FingerprintInput } from '../../src/idempotency/fingerprint.js';

const base: FingerprintInput = { method: 'POST', apiPath: '/v1/payments', headers: [], body: Buffer.from('{"amount":100,"currency":"usd"}'), mode: 'bytes' };
const fp = (over: Partial<FingerprintInput>) => fingerprint({ ...base, ...over });

test('bytes mode: every byte, the method, path+query and fingerprint headers count', () => {
  assert.equal(fp({}), fp({}));
  assert.notEqual(fp({}), fp({ body: Buffer.from('{"amount":101,"currency":"usd"}') }));
  assert.notEqual(fp({}), fp({ body: Buffer.from('{"currency":"usd","amount":100}') }));
  assert.notEqual(fp({}), fp({ method: 'PUT' }));
  assert.notEqual(fp({}), fp({ apiPath: '/v1/payments?expand=x' }));
  assert.notEqual(fp({}), fp({ headers: [['stripe-account', 'acct_1']] }));
});

test('canonical-json: key order and whitespace do not matter, digits do', () => {
  const c = (text: string) => fp({ mode: 'canonical-json', body: Buffer.from(text) });
  assert.equal(c('{"amount":100,"currency":"usd"}'), c('{ "currency": "usd",\n "amount": 100 }'));
  assert.equal(c('{"a":{"y":1,"x":[1,2]}}'), c('{"a":{"x":[1,2],"y":1}}'));
  assert.notEqual(c('{"amount":12345678901234567890123}'), c('{"amount":12345678901234567890124}'));
  assert.notEqual(c('{"wei":0.100000000000000001}'), c('{"wei":0.100000000000000002}'));
  assert.notEqual(c('[1,2]'), c('[2,1]'));
});

test('canonical-json falls back to bytes: invalid JSON, duplicate members, extreme nesting', () => {
  assert.equal(canonicalJson(Buffer.from('not json')), null);
  assert.equal(canonicalJson(Buffer.from('{"a":1,"a":2}')), null);
  assert.equal(canonicalJson(Buffer.from('['.repeat(10_000) + ']'.repeat(10_000))), null);
  assert.equal(canonicalJson(Buffer.from('{"s":"[[[[{{{{"}')), '{"s":"[[[[{{{{"}');
  // The fallback still fingerprints: two different non-JSON bodies differ, equal ones match.
  const c = (text: string) => fp({ mode: 'canonical-json', body: Buffer.from(text) });
  assert.equal(c('{"a":1,"a":2}'), c('{"a":1,"a":2}'));
  assert.notEqual(c('{"a":1,"a":2}'), c('{"a":2,"a":1}'));
});

test('a multipart boundary does not count: an SDK re-sending the same upload with a new boundary is the same request', () => {
  const form = (boundary: string, content: string) =>
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n${content}\r\n--${boundary}--\r\n`);
  const mp = (boundary: string, content: string) => fp({ body: form(boundary, content), contentType: `multipart/form-data; boundary=${boundary}` });
  assert.equal(mp('----a1b2', '{}'), mp('----zz99', '{}'));
  assert.notEqual(mp('----a1b2', '{}'), mp('----zz99', '{"x":1}'));
  assert.equal(fp({ body: form('q', '{}'), contentType: 'multipart/form-data; boundary="q"' }), mp('other', '{}'));
  // Not multipart: the bytes as they are.
  assert.notEqual(fp({ body: form('a', '{}'), contentType: 'text/plain' }), fp({ body: form('b', '{}'), contentType: 'text/plain' }));
});
