// Proves the streamed answer path (large answers, or of unknown length): a large read comes back byte
// for byte with and without a Content-Length; an agent that leaves in the middle cancels the read
// upstream; bodiless answers (HEAD of a large resource, 204) pass through with their headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { nodeRequest } from '../helpers/node-http.js';
import { startUpstream } from '../helpers/upstream.js';
import { startWriteguard } from '../helpers/writeguard.js';

// Small answers go back whole; large ones (or of unknown length) stream with backpressure.
test('a large read streams back byte-for-byte, with and without a content-length', async (t) => {
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
  const streaming = await startUpstream(async (req, res) => {
    const chunked = req.url.startsWith('/v1/chunked');
    res.writeHead(
      200,
      chunked
        ? { 'content-type': 'application/octet-stream' }
        : { 'content-type': 'application/octet-stream', 'content-length': big.length },
    );
    for (let at = 0; at < big.length; at += 256 * 1024) {
      if (!res.write(big.subarray(at, at + 256 * 1024))) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  });
  const sWg = await startWriteguard({ upstreams: [{ name: 's', target: streaming.url }] });
  t.after(async () => {
    await sWg.close();
    await streaming.close();
  });
  for (const path of ['/v1/sized', '/v1/chunked']) {
    const res = await fetch(`${sWg.url}${path}`);
    assert.equal(res.status, 200);
    const got = Buffer.from(await res.arrayBuffer());
    assert.equal(got.length, big.length, path);
    assert.ok(got.equals(big), `${path}: the body differs`);
  }
});

test('an agent that leaves in the middle of a large read cancels it upstream', { timeout: 20_000 }, async (t) => {
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
  const endless = await startUpstream(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.on('close', () => upstreamClosed());
    const chunk = Buffer.alloc(64 * 1024, 1);
    // Bounded: 4,000 chunks (256 MiB) at most, far more than the agent reads before leaving.
    for (let i = 0; i < 4000 && !res.destroyed; i++) {
      if (!res.write(chunk))
        await new Promise((r) => {
          res.once('drain', r);
          res.once('close', r);
        });
    }
    res.end();
  });
  const eWg = await startWriteguard({ upstreams: [{ name: 'e', target: endless.url }] });
  t.after(async () => {
    await eWg.close();
    await endless.close();
  });
  const got = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${eWg.url}/v1/download`, { agent: false }, (res) => {
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size >= 1024 * 1024) {
          req.destroy();
          resolve(size);
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', (err) => (err.message === 'socket hang up' ? undefined : reject(err)));
    req.end();
  });
  assert.ok(got >= 1024 * 1024);
  await Promise.race([
    closed,
    new Promise((_, reject) => setTimeout(() => reject(new Error('the upstream read was not cancelled within 5 s')), 5000)),
  ]);
});

test('bodiless answers on the streamed path: HEAD of a large resource and a 204 pass through with their headers', async (t) => {
  const sized = await startUpstream((req, res) => {
    if (req.url === '/v1/empty') {
      res.writeHead(204, { 'x-kept': 'yes' });
      return void res.end();
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(1024 * 1024) });
    res.end(req.method === 'HEAD' ? undefined : Buffer.alloc(1024 * 1024, 2));
  });
  const hWg = await startWriteguard({ upstreams: [{ name: 'h', target: sized.url }] });
  t.after(async () => {
    await hWg.close();
    await sized.close();
  });
  const head = await nodeRequest(`${hWg.url}/v1/file`, 'HEAD', {});
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(1024 * 1024));
  assert.equal(head.body.length, 0);
  const empty = await nodeRequest(`${hWg.url}/v1/empty`, 'GET', {});
  assert.equal(empty.status, 204);
  assert.equal(empty.headers['x-kept'], 'yes');
  assert.equal(empty.body.length, 0);
  assert.equal(sized.received.length, 2);
});
