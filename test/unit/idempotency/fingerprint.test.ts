import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CANONICAL_JSON_MAX_BYTES, canonicalJson, fingerprint, type FingerprintInput } from '../../../src/idempotency/fingerprint.js';

const base: FingerprintInput = {
  method: 'POST',
  apiPath: '/v1/payments',
  headers: [],
  body: Buffer.from('{"amount":100,"currency":"usd"}'),
  mode: 'bytes',
};
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
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jsonl"\r\n\r\n${content}\r\n--${boundary}--\r\n`,
    );
  const mp = (boundary: string, content: string) =>
    fp({ body: form(boundary, content), contentType: `multipart/form-data; boundary=${boundary}` });
  assert.equal(mp('----a1b2', '{}'), mp('----zz99', '{}'));
  assert.notEqual(mp('----a1b2', '{}'), mp('----zz99', '{"x":1}'));
  assert.equal(fp({ body: form('q', '{}'), contentType: 'multipart/form-data; boundary="q"' }), mp('other', '{}'));
  // Not multipart: the bytes as they are.
  assert.notEqual(fp({ body: form('a', '{}'), contentType: 'text/plain' }), fp({ body: form('b', '{}'), contentType: 'text/plain' }));
});

// --- Bounded canonical-json: one request's body cannot stall the event loop. ---

/** A JSON text of about `bytes` bytes: `count` copies of `item(i)` in an array, nested `wrap` levels deep. */
function sized(bytes: number, item: (i: number) => string, wrap = 0): Buffer {
  const parts: string[] = [];
  let size = 2 + 2 * wrap;
  for (let i = 0; size < bytes; i++) {
    const next = item(i);
    parts.push(next);
    size += next.length + 1;
  }
  return Buffer.from('['.repeat(wrap) + '[' + parts.join(',') + ']' + ']'.repeat(wrap));
}

/** The 64-deep shape that cost the most per byte before the bound (see fingerprint.ts). */
const deepItem = (i: number) =>
  '{"y":'.repeat(59) + `{"k7":${i},"k6":1.50,"k5":"s","k4":[0],"k3":{},"k2":null,"k1":true,"k0":-0e1}` + '}'.repeat(59);

test('canonical-json is bounded: above CANONICAL_JSON_MAX_BYTES the bytes are fingerprinted', () => {
  const c = (body: Buffer) => fp({ mode: 'canonical-json', body });
  const members = (n: number, reversed: boolean) => {
    const list = Array.from({ length: n }, (_, i) => `"k${String(i).padStart(6, '0')}":${i}.10`);
    return Buffer.from(`{${(reversed ? list.reverse() : list).join(',')}}`);
  };
  // Find the largest member count under the bound, then the smallest over it.
  let n = 1;
  while (members(n * 2, false).length <= CANONICAL_JSON_MAX_BYTES) n *= 2;
  while (members(n + 1, false).length <= CANONICAL_JSON_MAX_BYTES) n++;
  const under = [members(n, false), members(n, true)];
  const over = [members(n + 1, false), members(n + 1, true)];
  assert.ok(under[0]!.length <= CANONICAL_JSON_MAX_BYTES && over[0]!.length > CANONICAL_JSON_MAX_BYTES);
  assert.equal(c(under[0]!), c(under[1]!), 'under the bound: key order does not matter');
  assert.notEqual(canonicalJson(under[0]!), null);
  assert.equal(canonicalJson(over[0]!), null, 'over the bound: not parsed at all');
  assert.notEqual(c(over[0]!), c(over[1]!), 'over the bound: the bytes decide');
  assert.equal(c(over[1]!), c(Buffer.from(over[1]!)), 'and equal bytes still match');
  assert.equal(c(over[0]!), fp({ mode: 'bytes', body: over[0]! }), 'exactly as bytes mode would');
  // The bound is in bytes, not characters: multi-byte text counts by its encoded size.
  const wide = Buffer.from(JSON.stringify({ s: 'é'.repeat(Math.ceil(CANONICAL_JSON_MAX_BYTES / 2)) }));
  assert.ok(wide.toString('utf8').length <= CANONICAL_JSON_MAX_BYTES && wide.length > CANONICAL_JSON_MAX_BYTES);
  assert.equal(canonicalJson(wide), null);
});

test('canonical-json: the worst shapes measured at maxBodyBytes (1 MiB) finish, as bytes', () => {
  const MiB = 1 << 20;
  const shapes: Record<string, Buffer> = {
    'flat object': Buffer.from('{' + Array.from({ length: 70_000 }, (_, i) => `"k${i}":"v${i}"`).join(',') + '}'),
    'small numbers': sized(MiB, (i) => String(i % 10)),
    'empty objects': sized(MiB, () => '{}'),
    'long string': Buffer.from(JSON.stringify({ s: 'a'.repeat(MiB) })),
    'escaped string': Buffer.from(JSON.stringify({ s: 'é"\\\n\u0001'.repeat(MiB / 8) })),
    '64 deep, small arrays': sized(MiB, () => '[0]', 62),
    '64 deep, objects of 8 keys': sized(MiB, deepItem),
  };
  for (const [name, body] of Object.entries(shapes)) {
    assert.ok(body.length >= MiB - 100, `${name}: ${body.length} bytes`);
    assert.equal(canonicalJson(body), null, name);
    assert.match(fp({ mode: 'canonical-json', body }), /^[\w-]{43}$/, name);
  }
  // The same worst shape just under the bound is canonicalised, and is 64 deep.
  const body = sized(CANONICAL_JSON_MAX_BYTES - 1000, deepItem);
  const text = canonicalJson(body);
  assert.notEqual(text, null);
  assert.ok(
    text!.startsWith('[' + '{"y":'.repeat(59) + '{"k0":-0e1,"k1":true,"k2":null,"k3":{},"k4":[0],"k5":"s","k6":1.50,"k7":0}'),
    text!.slice(0, 400),
  );
});

test('canonical-json: numbers exactly as written, strings by their value', () => {
  assert.equal(canonicalJson(Buffer.from('{"b":24.50,"a":"24.50"}')), '{"a":"24.50","b":24.50}');
  const c = (text: string) => fp({ mode: 'canonical-json', body: Buffer.from(text) });
  assert.notEqual(c('{"amount":24.50}'), c('{"amount":24.5}'));
  assert.notEqual(c('{"amount":"24.50"}'), c('{"amount":24.50}'));
  assert.notEqual(c('{"wei":1000000000000000001}'), c('{"wei":1000000000000000000}'));
  assert.notEqual(c('{"wei":0.123456789012345678}'), c('{"wei":0.123456789012345679}'));
  assert.equal(canonicalJson(Buffer.from('[1E5,1e+5,-0,0.0,1.000000000000000000001]')), '[1E5,1e+5,-0,0.0,1.000000000000000000001]');
  // Escapes name the same string: "\u0061" is "a", "\/" is "/".
  assert.equal(c('{"a":"x/y"}'), c('{"\\u0061":"x\\/y"}'));
  assert.equal(canonicalJson(Buffer.from('{"__proto__":{"x":1},"a":"\\ud800"}')), '{"__proto__":{"x":1},"a":"\\ud800"}');
});

test('canonical-json falls back to bytes on conflicting duplicate members, and on text that is not UTF-8', () => {
  assert.equal(canonicalJson(Buffer.from('{"a":1,"a":2}')), null);
  assert.equal(canonicalJson(Buffer.from('[{"x":{"b":1,"b":[2]}}]')), null, 'at any depth');
  // Two different invalid byte sequences must not decode to the same U+FFFD text and match.
  const c = (body: Buffer) => fp({ mode: 'canonical-json', body });
  const bad = (byte: number) => Buffer.concat([Buffer.from('{"a":"'), Buffer.from([byte]), Buffer.from('"}')]);
  assert.equal(canonicalJson(bad(0xff)), null);
  assert.notEqual(c(bad(0xff)), c(bad(0xfe)));
  for (const text of [
    '',
    ' ',
    '{',
    '[1,]',
    '{"a":1,}',
    '01',
    '1.',
    '.5',
    '+1',
    '"\t"',
    '"\\x"',
    '"\\u12"',
    'nul',
    'truex',
    '[1] 2',
    "{'a':1}",
    'NaN',
  ]) {
    assert.equal(canonicalJson(Buffer.from(text)), null, JSON.stringify(text));
  }
  assert.equal(canonicalJson(Buffer.from(' \n{ "b" : [ true , false , null ] , "a" : "" }\r\t')), '{"a":"","b":[true,false,null]}');
});

test('canonical-json nesting: 64 levels are canonical, 65 fall back to bytes', () => {
  const nested = (depth: number) => '[{"a":'.repeat(depth / 2) + '1' + '}]'.repeat(depth / 2);
  assert.notEqual(canonicalJson(Buffer.from(nested(64))), null);
  assert.equal(canonicalJson(Buffer.from(nested(64).replace(/^\[/, '[[').replace(/\]$/, ']]'))), null);
});

test('a fingerprint hashes as it did in earlier versions: records already stored still match after an upgrade', () => {
  const body = Buffer.from('{"b":1,"a":"naïve ✓"}');
  const multipart = Buffer.from('--xyz\r\na\r\n--xyz--');
  assert.equal(
    fp({ apiPath: '/v1/payments?x=1', headers: [['stripe-account', 'acct_1']], body, credential: 'c1' }),
    'oDPiaMlQRCIqHU2u-Ar2kZcDejJl1qDfK6C_KsA4X10',
  );
  assert.equal(fp({ body, mode: 'canonical-json' }), 'L8ZDHz2ImVzGTWCkMeLpqGk3ftYPCQp14cDT2VNNIKA');
  assert.equal(
    fp({ apiPath: '/up', body: multipart, contentType: 'multipart/form-data; boundary=xyz' }),
    '5067ghhvWjR1_C9HP1VNsyoNpzlQddWfHYDIoHX8uL0',
  );
});
