// Proves that a write's body reaches the upstream byte for byte, whatever it is: binary that is not
// UTF-8 (with its content type and length), JSON with odd spacing, key order and number forms,
// text/plain (which fastify would parse), and a chunked body without a Content-Length.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { behindWriteguard } from '../helpers/behind-writeguard.js';
import { deterministic } from '../helpers/upstream.js';

const api = behindWriteguard(deterministic, { name: 'api' });

test('a write body is forwarded byte-for-byte: binary bytes that are not UTF-8', async () => {
  const { up, wg } = api;
  const bytes = Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x90, 0x28, 0xbc, 0x0d, 0x0a, 0x80]);
  const before = up.received.length;
  const res = await fetch(`${wg.url}/v1/files`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
  assert.equal(res.status, 201);
  await res.arrayBuffer();
  assert.equal(up.received.length, before + 1);
  const got = up.received.at(-1)!;
  assert.ok(got.body.equals(bytes), `received ${got.body.toString('hex')}`);
  assert.equal(got.headers['content-type'], 'application/octet-stream');
  assert.equal(got.headers['content-length'], String(bytes.length));
});

test('a write body is forwarded byte-for-byte: JSON with odd spacing, key order and number forms kept', async () => {
  const { up, wg } = api;
  const text =
    '{  "amount" :1000.50 ,\n\t"currency":"eur", "a":1e2,"b" : "caf\\u00e9 ☕" , "amount_wei":123456789012345678901234567890 }  \n';
  const bytes = Buffer.from(text, 'utf8');
  const before = up.received.length;
  const res = await fetch(`${wg.url}/v1/payments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bytes });
  assert.equal(res.status, 201);
  await res.arrayBuffer();
  assert.equal(up.received.length, before + 1);
  assert.ok(up.received.at(-1)!.body.equals(bytes), up.received.at(-1)!.body.toString('utf8'));
});

test('a text/plain write body is forwarded byte-for-byte', async () => {
  const { up, wg } = api;
  // fastify parses text/plain into a string by default; writeguard must still forward the raw bytes.
  const text = 'amount=1000 currency=eur\r\n  note: café ☕\n';
  const before = up.received.length;
  const res = await fetch(`${wg.url}/v1/notes`, { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, body: text });
  assert.equal(res.status, 201, await res.clone().text());
  await res.arrayBuffer();
  assert.equal(up.received.length, before + 1);
  assert.ok(up.received.at(-1)!.body.equals(Buffer.from(text, 'utf8')), up.received.at(-1)!.body.toString('utf8'));
});

test('a chunked write body (no content-length) arrives whole', async () => {
  const { up, wg } = api;
  const parts = ['{"a":', '1,', '"b":2}'];
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const p of parts) controller.enqueue(new TextEncoder().encode(p));
      controller.close();
    },
  });
  const before = up.received.length;
  const res = await fetch(`${wg.url}/v1/payments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: stream,
    duplex: 'half',
  } as RequestInit);
  assert.equal(res.status, 201);
  await res.arrayBuffer();
  assert.equal(up.received.length, before + 1);
  assert.equal(up.received.at(-1)!.body.toString('utf8'), parts.join(''));
});
