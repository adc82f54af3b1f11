// Transparent forwarding: the agent gets what the upstream said, the upstream gets what the agent sent.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { startUpstream, type CountingUpstream, type Received } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

/** An answer that depends only on the request, so the direct and proxied answers can be compared. */
function deterministic(req: Received, res: import('node:http').ServerResponse): void {
  const body = Buffer.from(JSON.stringify({ method: req.method, url: req.url, length: req.body.length }));
  const status = req.method === 'POST' ? 201 : req.method === 'DELETE' ? 202 : 200;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': body.length,
    'request-id': `req_${req.method}_${req.url.length}`,
    'x-ratelimit-remaining': '99',
    'cache-control': 'no-store',
    'set-cookie': ['a=1; Path=/', 'b=2; Path=/'],
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Response headers that say something about the message, not the hop. */
function endToEnd(headers: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  headers.forEach((value, name) => {
    if (!['date', 'connection', 'keep-alive', 'transfer-encoding'].includes(name)) out[name] = value;
  });
  return out;
}

/** Headers writeguard adds of its own (attempt count, the key it used); everything else must be the upstream's. */
const OWN_HEADER = /^(x-writeguard-|writeguard-|idempotency-key$)/;
function withoutOwn(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !OWN_HEADER.test(name)));
}

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** node:http lets a test send any header (Connection lists, Proxy-Authorization) and see every one back. */
function raw(url: string, method: string, headers: OutgoingHttpHeaders, body?: Buffer): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

let up: CountingUpstream;
let wg: RunningWriteguard;
before(async () => {
  up = await startUpstream(deterministic);
  wg = await startWriteguard({ upstreams: [{ name: 'api', target: up.url }] });
});
after(async () => {
  await wg?.close();
  await up?.close();
});

const cases: Array<{ method: string; path: string; body?: string; type?: string }> = [
  { method: 'GET', path: '/v1/charges?limit=3&starting_after=ch_1&q=a%20b' },
  { method: 'POST', path: '/v1/charges', body: '{"amount":1000,"currency":"eur"}', type: 'application/json' },
  { method: 'PUT', path: '/v1/customers/cus_1', body: '{"name":"Ada"}', type: 'application/json' },
  { method: 'DELETE', path: '/v1/customers/cus_1' },
  { method: 'HEAD', path: '/v1/charges/ch_1' },
];

for (const c of cases) {
  test(`${c.method} through writeguard gets the same status, body bytes and headers as directly`, async () => {
    const init = (): RequestInit => ({
      method: c.method,
      headers: c.type === undefined ? {} : { 'content-type': c.type },
      ...(c.body === undefined ? {} : { body: c.body }),
    });
    const before = up.received.length;
    const direct = await fetch(up.url + c.path, init());
    const directBody = Buffer.from(await direct.arrayBuffer());
    const proxied = await fetch(wg.url + c.path, init());
    const proxiedBody = Buffer.from(await proxied.arrayBuffer());

    assert.equal(up.received.length, before + 2, 'the upstream saw one direct and one proxied request');
    const [d, p] = up.received.slice(-2) as [Received, Received];
    assert.equal(p.method, c.method);
    assert.equal(p.url, c.path, 'path and query string arrive unchanged');
    assert.deepEqual(p.body, d.body);

    assert.equal(proxied.status, direct.status);
    assert.equal(proxied.status, c.method === 'POST' ? 201 : c.method === 'DELETE' ? 202 : 200);
    assert.deepEqual(proxiedBody, directBody);
    assert.deepEqual(withoutOwn(endToEnd(proxied.headers)), endToEnd(direct.headers));
    assert.deepEqual(proxied.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Path=/']);
  });
}

test('a write body is forwarded byte-for-byte: binary bytes that are not UTF-8', async () => {
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
  const text = '{  "amount" :1000.50 ,\n\t"currency":"eur", "a":1e2,"b" : "caf\\u00e9 ☕" , "amount_wei":123456789012345678901234567890 }  \n';
  const bytes = Buffer.from(text, 'utf8');
  const before = up.received.length;
  const res = await fetch(`${wg.url}/v1/payments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bytes });
  assert.equal(res.status, 201);
  await res.arrayBuffer();
  assert.equal(up.received.length, before + 1);
  assert.ok(up.received.at(-1)!.body.equals(bytes), up.received.at(-1)!.body.toString('utf8'));
});

test('a text/plain write body is forwarded byte-for-byte', async () => {
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
  const parts = ['{"a":', '1,', '"b":2}'];
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const p of parts) controller.enqueue(new TextEncoder().encode(p));
      controller.close();
    },
  });
  const before = up.received.length;
  const res = await fetch(`${wg.url}/v1/payments`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
  assert.equal(res.status, 201);
  await res.arrayBuffer();
  assert.equal(up.received.length, before + 1);
  assert.equal(up.received.at(-1)!.body.toString('utf8'), parts.join(''));
});

for (const method of ['GET', 'POST']) {
  test(`${method}: Host is rewritten to the target; forwarding, proxy and Connection-listed headers are not sent upstream`, async () => {
    const before = up.received.length;
    const body = method === 'POST' ? Buffer.from('{"x":1}') : undefined;
    const res = await raw(`${wg.url}/v1/hygiene`, method, {
      host: 'evil.test',
      connection: 'keep-alive, X-Secret-Hop',
      'x-secret-hop': 'only for the first hop',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
      forwarded: 'for=203.0.113.9;host=evil.test;proto=https',
      'x-forwarded-for': '203.0.113.9',
      'x-forwarded-host': 'evil.test',
      'x-forwarded-proto': 'https',
      'x-real-ip': '203.0.113.9',
      authorization: 'Bearer sk_test_kept',
      'x-end-to-end': 'kept',
      ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': body.length }),
    }, body);
    assert.equal(res.status, method === 'POST' ? 201 : 200);
    assert.equal(up.received.length, before + 1);
    const got = up.received.at(-1)!;
    assert.equal(got.headers.host, `127.0.0.1:${up.port}`);
    for (const name of ['x-secret-hop', 'keep-alive', 'proxy-authorization', 'forwarded', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-real-ip']) {
      assert.equal(got.headers[name], undefined, `${name} must not reach the upstream`);
    }
    assert.notEqual(got.headers.connection, 'keep-alive, X-Secret-Hop');
    assert.ok(!got.rawHeaders.some((h) => /evil\.test|203\.0\.113\.9|cHJveHk6c2VjcmV0/.test(h)), got.rawHeaders.join(' | '));
    assert.equal(got.headers.authorization, 'Bearer sk_test_kept');
    assert.equal(got.headers['x-end-to-end'], 'kept');
  });

  test(`${method}: hop-by-hop response headers from the upstream are not passed to the client`, async () => {
    const hopUp = await startUpstream((_req, res) => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-length': '2',
        connection: 'x-upstream-hop',
        'x-upstream-hop': 'internal',
        'keep-alive': 'timeout=99',
        'proxy-authenticate': 'Basic realm="upstream"',
        'x-end-to-end': 'kept',
      });
      res.end('ok');
    });
    const hopWg = await startWriteguard({ upstreams: [{ name: 'hop', target: hopUp.url }] });
    try {
      const res = await raw(`${hopWg.url}/v1/x`, method, method === 'POST' ? { 'content-length': 0 } : {});
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'ok');
      assert.equal(hopUp.count('/v1/x'), 1);
      assert.equal(res.headers['x-upstream-hop'], undefined);
      assert.equal(res.headers['proxy-authenticate'], undefined);
      assert.notEqual(res.headers['keep-alive'], 'timeout=99');
      assert.ok(!/x-upstream-hop/i.test(String(res.headers.connection ?? '')));
      assert.equal(res.headers['x-end-to-end'], 'kept');
    } finally {
      await hopWg.close();
      await hopUp.close();
    }
  });
}

test('the target URL\'s own path is prepended', async (t) => {
  const baseUp = await startUpstream();
  const baseWg = await startWriteguard({ upstreams: [{ name: 'api', target: `${baseUp.url}/api` }] });
  t.after(async () => {
    await baseWg.close();
    await baseUp.close();
  });
  const get = await fetch(`${baseWg.url}/v1/x?a=1`);
  assert.equal(get.status, 200);
  await get.arrayBuffer();
  const post = await fetch(`${baseWg.url}/v1/x`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  assert.equal(post.status, 201);
  await post.arrayBuffer();
  assert.deepEqual(baseUp.received.map((r) => `${r.method} ${r.url}`), ['GET /api/v1/x?a=1', 'POST /api/v1/x']);
});

test('with prefixes /pay and /, the longest prefix wins and is stripped', async (t) => {
  const pay = await startUpstream();
  const rest = await startUpstream();
  const twoWg = await startWriteguard({
    upstreams: [
      { name: 'pay', prefix: '/pay', target: `${pay.url}/base` },
      { name: 'rest', prefix: '/', target: rest.url },
    ],
  });
  t.after(async () => {
    await twoWg.close();
    await pay.close();
    await rest.close();
  });
  const requests: Array<[string, string]> = [
    ['GET', '/pay/v1/x?q=1'],
    ['POST', '/pay/v1/x'],
    ['GET', '/pay'],
    ['GET', '/payments'],
    ['POST', '/payments'],
    ['GET', '/v1/other'],
  ];
  for (const [method, path] of requests) {
    const res = await fetch(twoWg.url + path, { method, ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}) });
    assert.equal(res.status, method === 'POST' ? 201 : 200, `${method} ${path}`);
    await res.arrayBuffer();
  }
  assert.deepEqual(pay.received.map((r) => `${r.method} ${r.url}`), ['GET /base/v1/x?q=1', 'POST /base/v1/x', 'GET /base/']);
  assert.deepEqual(rest.received.map((r) => `${r.method} ${r.url}`), ['GET /payments', 'POST /payments', 'GET /v1/other']);
});

test('an upstream with its own listen port is reachable on its own listener', async (t) => {
  const main = await startUpstream();
  const own = await startUpstream();
  const ownWg = await startWriteguard({
    upstreams: [
      { name: 'main', prefix: '/main', target: main.url },
      { name: 'own', listen: { host: '127.0.0.1', port: 0 }, target: own.url },
    ],
  });
  t.after(async () => {
    await ownWg.close();
    await main.close();
    await own.close();
  });
  assert.equal(ownWg.urls.length, 2);
  assert.notEqual(ownWg.urls[0], ownWg.urls[1]);
  const viaOwn = await fetch(`${ownWg.urls[1]}/v1/x`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  assert.equal(viaOwn.status, 201);
  await viaOwn.arrayBuffer();
  const viaOwnGet = await fetch(`${ownWg.urls[1]}/v1/y`);
  assert.equal(viaOwnGet.status, 200);
  await viaOwnGet.arrayBuffer();
  const viaMain = await fetch(`${ownWg.urls[0]}/main/v1/z`);
  assert.equal(viaMain.status, 200);
  await viaMain.arrayBuffer();
  // The own listener is not reachable through the main one.
  const notMain = await fetch(`${ownWg.urls[0]}/v1/x`);
  assert.equal(notMain.status, 404);
  await notMain.arrayBuffer();
  assert.deepEqual(own.received.map((r) => `${r.method} ${r.url}`), ['POST /v1/x', 'GET /v1/y']);
  assert.deepEqual(main.received.map((r) => `${r.method} ${r.url}`), ['GET /v1/z']);
});

for (const method of ['GET', 'POST']) {
  test(`${method}: an upstream redirect is passed back, not followed`, async (t) => {
    const decoy = await startUpstream();
    const redirecting = await startUpstream((_req, res) => {
      res.writeHead(302, { location: `${decoy.url}/elsewhere`, 'content-length': '0' });
      res.end();
    });
    const rWg = await startWriteguard({ upstreams: [{ name: 'r', target: redirecting.url }] });
    t.after(async () => {
      await rWg.close();
      await redirecting.close();
      await decoy.close();
    });
    const res = await fetch(`${rWg.url}/v1/go`, { method, redirect: 'manual', ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}) });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), `${decoy.url}/elsewhere`);
    await res.arrayBuffer();
    assert.equal(redirecting.count('/v1/go'), 1);
    assert.equal(decoy.received.length, 0);
    assert.equal(decoy.connections(), 0);
  });
}

// Small answers go back whole; large ones (or of unknown length) stream with backpressure.
test('a large read streams back byte-for-byte, with and without a content-length', async (t) => {
  const big = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
  const streaming = await startUpstream(async (req, res) => {
    const chunked = req.url.startsWith('/v1/chunked');
    res.writeHead(200, chunked ? { 'content-type': 'application/octet-stream' } : { 'content-type': 'application/octet-stream', 'content-length': big.length });
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
      if (!res.write(chunk)) await new Promise((r) => { res.once('drain', r); res.once('close', r); });
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
  await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('the upstream read was not cancelled within 5 s')), 5000))]);
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
  const head = await raw(`${hWg.url}/v1/file`, 'HEAD', {});
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(1024 * 1024));
  assert.equal(head.body.length, 0);
  const empty = await raw(`${hWg.url}/v1/empty`, 'GET', {});
  assert.equal(empty.status, 204);
  assert.equal(empty.headers['x-kept'], 'yes');
  assert.equal(empty.body.length, 0);
  assert.equal(sized.received.length, 2);
});
