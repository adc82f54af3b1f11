// Proves that a request over a size limit is refused with writeguard's problem and never reaches the
// upstream: a body over maxBodyBytes (declared by Content-Length or streamed chunked) is 413
// body_too_large, more header lines than limits.maxHeaderCount or a 20 KiB header is 431
// headers_too_large (logged with the problem's request id); a request exactly at a limit passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { behindWriteguard } from '../helpers/behind-writeguard.js';
import { nodeRequest } from '../helpers/node-http.js';
import { assertProblem, expectProblem, expectRawProblem } from '../helpers/problem.js';
import { portOf, rawRequest } from '../helpers/raw-http.js';

const pay = behindWriteguard(undefined, { name: 'pay', prefix: '/pay', idempotency: { maxBodyBytes: 1024 } });

test('an oversized body with content-length is 413 body_too_large; the upstream sees nothing', async () => {
  const { up, wg } = pay;
  const before = up.received.length;
  await expectProblem(
    await fetch(`${wg.url}/pay/v1/x`, {
      method: 'POST',
      body: Buffer.alloc(2048, 0x61),
      headers: { 'content-type': 'application/octet-stream' },
    }),
    413,
    'body_too_large',
  );
  await expectProblem(
    await fetch(`${wg.url}/pay/v1/x`, {
      method: 'POST',
      body: JSON.stringify({ a: 'x'.repeat(2048) }),
      headers: { 'content-type': 'application/json' },
    }),
    413,
    'body_too_large',
  );
  assert.equal(up.received.length, before);
  // A body at the limit passes.
  const ok = await fetch(`${wg.url}/pay/v1/x`, {
    method: 'POST',
    body: Buffer.alloc(1024, 0x61),
    headers: { 'content-type': 'application/octet-stream' },
  });
  assert.equal(ok.status, 201);
  await ok.arrayBuffer();
  assert.equal(up.received.length, before + 1);
});

test('an oversized chunked body is 413 body_too_large; the upstream sees nothing', async () => {
  const { up, wg } = pay;
  const before = up.received.length;
  const res = await nodeRequest(`${wg.url}/pay/v1/x`, 'POST', { 'content-type': 'application/json' }, [
    Buffer.alloc(512, 0x61),
    Buffer.alloc(512, 0x62),
    Buffer.alloc(1024, 0x63),
  ]);
  assertProblem(res, res.body.toString('utf8'), 413, 'body_too_large');
  assert.equal(up.received.length, before);
});

test('more header lines than limits.maxHeaderCount is 431 headers_too_large; the upstream sees nothing', async () => {
  const { up, wg } = pay;
  const before = up.received.length;
  const port = portOf(wg.url);
  const many = (n: number): string => Array.from({ length: n }, (_, i) => `X-H-${i}: v\r\n`).join('');
  expectRawProblem(await rawRequest(port, `GET /pay/v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\n${many(250)}\r\n`), 431, 'headers_too_large');
  expectRawProblem(
    await rawRequest(
      port,
      `POST /pay/v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n${many(250)}Idempotency-Key: trailing-key\r\n\r\n{}`,
    ),
    431,
    'headers_too_large',
  );
  assert.equal(up.received.length, before);
  // Exactly the limit (200 lines, Host included) passes.
  const ok = await rawRequest(port, `GET /pay/v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${many(198)}\r\n`);
  assert.equal(ok?.status, 200, ok?.text);
  assert.equal(up.received.length, before + 1);
});

test('a 20 KiB header is 431 headers_too_large with a problem body; the upstream sees nothing', async () => {
  const { up, wg } = pay;
  const before = up.received.length;
  const responses = wg.logs.responses().length;
  const res = await rawRequest(portOf(wg.url), `GET /pay/v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
  const p = expectRawProblem(res, 431, 'headers_too_large');
  assert.equal(p.retry_strategy, 'fix_request');
  assert.equal(up.received.length, before);
  const lines = await wg.logs.waitForResponses(responses + 1);
  assert.equal(lines[responses]!.code, 'headers_too_large');
  assert.equal(lines[responses]!.request_id, p.request_id);
});
