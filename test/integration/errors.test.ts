// writeguard's own refusals and failures: exact status, problem code, and what the upstream received.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { freePort } from '../helpers/ports.js';
import { rawRequest, portOf, type RawResponse } from '../helpers/raw-http.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  retry_strategy: string;
  request_id: string;
  error: { type: string; code: string; message: string };
}

/** Checks a problem answer (status, content type, code in both places, request id = header) and returns its body. */
function assertProblem(res: { status: number; headers: Record<string, string | string[] | undefined> | Headers }, text: string, status: number, code: string): ProblemBody {
  const header = (name: string): string | null => {
    if (res.headers instanceof Headers) return res.headers.get(name);
    const v = res.headers[name];
    return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
  };
  assert.equal(res.status, status, text);
  assert.match(header('content-type') ?? '', /^application\/problem\+json/);
  const problem = JSON.parse(text) as ProblemBody;
  assert.equal(problem.status, status);
  assert.equal(problem.code, code);
  assert.equal(problem.error.code, code);
  assert.equal(problem.type, `https://writeguard.dev/errors/${code}`);
  assert.ok(problem.error.message.length > 0);
  assert.equal(problem.request_id, header('x-request-id'));
  return problem;
}

async function fetchProblem(url: string, init: RequestInit, status: number, code: string): Promise<ProblemBody> {
  const res = await fetch(url, init);
  return assertProblem(res, await res.text(), status, code);
}

function rawProblem(res: RawResponse | null, status: number, code: string): ProblemBody {
  assert.ok(res !== null, 'the server answered');
  return assertProblem(res, res.body.toString('utf8'), status, code);
}

/** node:http request with a streamed (chunked) body. */
function chunkedPost(url: string, chunks: Buffer[], headers: OutgoingHttpHeaders = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

let up: CountingUpstream;
let wg: RunningWriteguard;
before(async () => {
  up = await startUpstream();
  wg = await startWriteguard({ upstreams: [{ name: 'pay', prefix: '/pay', target: up.url, idempotency: { maxBodyBytes: 1024 } }] });
});
after(async () => {
  await wg?.close();
  await up?.close();
});

test('an unknown route is 404 no_route; the upstream sees nothing', async () => {
  const before = up.received.length;
  const p = await fetchProblem(`${wg.url}/other`, {}, 404, 'no_route');
  assert.equal(p.retry_strategy, 'fix_request');
  await fetchProblem(`${wg.url}/other/v1/x`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }, 404, 'no_route');
  await fetchProblem(`${wg.url}/payments`, {}, 404, 'no_route');
  assert.equal(up.received.length, before);
});

test('an oversized body with content-length is 413 body_too_large; the upstream sees nothing', async () => {
  const before = up.received.length;
  await fetchProblem(`${wg.url}/pay/v1/x`, { method: 'POST', body: Buffer.alloc(2048, 0x61), headers: { 'content-type': 'application/octet-stream' } }, 413, 'body_too_large');
  await fetchProblem(`${wg.url}/pay/v1/x`, { method: 'POST', body: JSON.stringify({ a: 'x'.repeat(2048) }), headers: { 'content-type': 'application/json' } }, 413, 'body_too_large');
  assert.equal(up.received.length, before);
  // A body at the limit passes.
  const ok = await fetch(`${wg.url}/pay/v1/x`, { method: 'POST', body: Buffer.alloc(1024, 0x61), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(ok.status, 201);
  await ok.arrayBuffer();
  assert.equal(up.received.length, before + 1);
});

test('an oversized chunked body is 413 body_too_large; the upstream sees nothing', async () => {
  const before = up.received.length;
  const res = await chunkedPost(`${wg.url}/pay/v1/x`, [Buffer.alloc(512, 0x61), Buffer.alloc(512, 0x62), Buffer.alloc(1024, 0x63)]);
  assertProblem(res, res.text, 413, 'body_too_large');
  assert.equal(up.received.length, before);
});

test('an agent that leaves halfway through a body: nothing is sent upstream and its line says client_gone', async () => {
  const before = up.received.length;
  const linesBefore = wg.logs.responses().length;
  const socket = connect(portOf(wg.url), '127.0.0.1');
  await once(socket, 'connect');
  socket.write('POST /pay/v1/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nIdempotency-Key: k-gone\r\n\r\n{"amount":');
  await new Promise((r) => setTimeout(r, 50));
  socket.destroy();
  await wg.logs.waitForResponses(linesBefore + 1);
  const line = wg.logs.responses().at(-1)!;
  assert.equal(line.client_gone, true);
  assert.equal(up.received.length, before);
});

test('an absolute-form target is 400 bad_request and never reaches another host', async (t) => {
  const decoy = await startUpstream(undefined, '127.0.0.2');
  t.after(() => decoy.close());
  const before = up.received.length;
  const port = portOf(wg.url);
  const get = await rawRequest(port, `GET http://127.0.0.2:${decoy.port}/x HTTP/1.1\r\nHost: 127.0.0.2:${decoy.port}\r\n\r\n`);
  rawProblem(get, 400, 'bad_request');
  const prefixed = await rawRequest(port, `POST http://127.0.0.2:${decoy.port}/pay/v1/x HTTP/1.1\r\nHost: 127.0.0.2:${decoy.port}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`);
  rawProblem(prefixed, 400, 'bad_request');
  // CONNECT never opens a tunnel.
  const tunnel = await rawRequest(port, `CONNECT 127.0.0.2:${decoy.port} HTTP/1.1\r\nHost: 127.0.0.2:${decoy.port}\r\n\r\n`);
  assert.ok(tunnel === null || tunnel.status >= 400, tunnel?.text);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(decoy.connections(), 0);
  assert.equal(decoy.received.length, 0);
  assert.equal(up.received.length, before);
});

for (const method of ['GET', 'POST']) {
  test(`${method} with a spoofed Host and X-Forwarded-Host reaches only the configured upstream, with its own host`, async (t) => {
    const decoy = await startUpstream(undefined, '127.0.0.2');
    t.after(() => decoy.close());
    const before = up.received.length;
    const body = method === 'POST' ? '{"a":1}' : '';
    const res = await rawRequest(
      portOf(wg.url),
      `${method} /pay/v1/x HTTP/1.1\r\nHost: 127.0.0.2:${decoy.port}\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: https\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    assert.ok(res !== null);
    assert.equal(res.status, method === 'POST' ? 201 : 200, res.text);
    assert.equal(up.received.length, before + 1);
    const got = up.received.at(-1)!;
    assert.equal(got.url, '/v1/x');
    assert.equal(got.headers.host, `127.0.0.1:${up.port}`);
    assert.equal(got.headers['x-forwarded-host'], undefined);
    assert.equal(decoy.connections(), 0);

    // A plain client library's view of the same thing.
    const viaHttp = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${wg.url}/pay/v1/y`, { method, headers: { host: 'evil.test', 'x-forwarded-host': 'evil.test', 'content-length': body.length }, agent: false }, (r) => {
        r.resume();
        r.on('end', () => resolve(r.statusCode!));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(viaHttp, method === 'POST' ? 201 : 200);
    assert.equal(up.received.at(-1)!.headers.host, `127.0.0.1:${up.port}`);
    assert.equal(up.received.length, before + 2);
  });
}

test('two Host headers are 400 bad_request; the upstream sees nothing', async () => {
  const before = up.received.length;
  const port = portOf(wg.url);
  rawProblem(await rawRequest(port, `GET /pay/v1/x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nHost: evil.test\r\n\r\n`), 400, 'bad_request');
  rawProblem(await rawRequest(port, `POST /pay/v1/x HTTP/1.1\r\nHost: evil.test\r\nhost: 127.0.0.1:${port}\r\nContent-Length: 2\r\n\r\n{}`), 400, 'bad_request');
  assert.equal(up.received.length, before);
});

test('more header lines than limits.maxHeaderCount is 431 headers_too_large; the upstream sees nothing', async () => {
  const before = up.received.length;
  const port = portOf(wg.url);
  const many = (n: number): string => Array.from({ length: n }, (_, i) => `X-H-${i}: v\r\n`).join('');
  rawProblem(await rawRequest(port, `GET /pay/v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\n${many(250)}\r\n`), 431, 'headers_too_large');
  rawProblem(
    await rawRequest(port, `POST /pay/v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n${many(250)}Idempotency-Key: trailing-key\r\n\r\n{}`),
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
  const before = up.received.length;
  const responses = wg.logs.responses().length;
  const res = await rawRequest(portOf(wg.url), `GET /pay/v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
  const p = rawProblem(res, 431, 'headers_too_large');
  assert.equal(p.retry_strategy, 'fix_request');
  assert.equal(up.received.length, before);
  const lines = await wg.logs.waitForResponses(responses + 1);
  assert.equal(lines[responses]!.code, 'headers_too_large');
  assert.equal(lines[responses]!.request_id, p.request_id);
});

test('path traversal is 400 bad_request; the upstream sees nothing', async (t) => {
  const root = await startWriteguard({ upstreams: [{ name: 'root', target: `${up.url}/api` }] });
  t.after(() => root.close());
  const before = up.received.length;
  for (const [base, paths] of [
    [root.url, ['/../x', '/%2e%2e/x', '/%2E%2E/x', '/v1/../../x', '/v1/..%2f..%2fx', '/v1/%2e%2e%5cx', '/./x']],
    [wg.url, ['/pay/../x', '/pay/%2e%2e/x', '/pay/v1/%2e%2e/%2e%2e/admin']],
  ] as const) {
    for (const path of paths) {
      for (const method of ['GET', 'POST']) {
        const res = await rawRequest(portOf(base), `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        rawProblem(res, 400, 'bad_request');
      }
    }
  }
  assert.equal(up.received.length, before);
});

test('a route outside the allow-list is 403 route_not_allowed; the upstream sees nothing', async (t) => {
  const allowUp = await startUpstream();
  const allowWg = await startWriteguard({ upstreams: [{ name: 'ro', target: allowUp.url, allow: ['GET /v1/*'] }] });
  t.after(async () => {
    await allowWg.close();
    await allowUp.close();
  });
  const p = await fetchProblem(`${allowWg.url}/v1/x`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }, 403, 'route_not_allowed');
  assert.equal(p.retry_strategy, 'fix_request');
  await fetchProblem(`${allowWg.url}/v1/x`, { method: 'DELETE' }, 403, 'route_not_allowed');
  await fetchProblem(`${allowWg.url}/v2/x`, {}, 403, 'route_not_allowed');
  assert.equal(allowUp.received.length, 0);
  const ok = await fetch(`${allowWg.url}/v1/x?a=1`);
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
  assert.equal(allowUp.received.length, 1);
});

test('an upstream that is down: GET and POST are 502 upstream_unreachable', async (t) => {
  const port = await freePort();
  const downWg = await startWriteguard({ upstreams: [{ name: 'down', target: `http://127.0.0.1:${port}` }] });
  t.after(() => downWg.close());
  const get = await fetchProblem(`${downWg.url}/v1/x`, {}, 502, 'upstream_unreachable');
  assert.equal(get.retry_strategy, 'backoff');
  await fetchProblem(`${downWg.url}/v1/x`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } }, 502, 'upstream_unreachable');
  const lines = await downWg.logs.waitForResponses(2);
  assert.deepEqual(lines.map((l) => [l.method, l.status, l.code]), [['GET', 502, 'upstream_unreachable'], ['POST', 502, 'upstream_unreachable']]);
});

test('an upstream that takes a POST and then drops the connection: 502 outcome_unknown', async (t) => {
  const dropping = await startUpstream((_req, res) => void res.socket?.destroy());
  const dropWg = await startWriteguard({ upstreams: [{ name: 'drop', target: dropping.url }] });
  t.after(async () => {
    await dropWg.close();
    await dropping.close();
  });
  const p = await fetchProblem(`${dropWg.url}/v1/payments`, { method: 'POST', body: '{"amount":1}', headers: { 'content-type': 'application/json' } }, 502, 'outcome_unknown');
  assert.equal(p.retry_strategy, 'reconcile');
  assert.equal(dropping.count('/v1/payments'), 1, 'the write reached the upstream exactly once');
  const [line] = await dropWg.logs.waitForResponses(1);
  assert.equal(line!.code, 'outcome_unknown');
  assert.equal(line!.outcome, 'unknown');
});

test('an upstream that hangs past timeoutMs: POST 504 outcome_unknown after one attempt, GET 504 upstream_timeout after its retries', async (t) => {
  const pending: ServerResponse[] = [];
  const hanging = await startUpstream((_req, res) => void pending.push(res));
  const slowWg = await startWriteguard({ upstreams: [{ name: 'slow', target: hanging.url, timeoutMs: 300 }] });
  t.after(async () => {
    for (const res of pending) res.destroy();
    await slowWg.close();
    await hanging.close();
  });
  let started = Date.now();
  const post = await fetchProblem(`${slowWg.url}/v1/payments`, { method: 'POST', body: '{"amount":1}', headers: { 'content-type': 'application/json' } }, 504, 'outcome_unknown');
  let elapsed = Date.now() - started;
  assert.ok(elapsed >= 290 && elapsed < 3000, `answered after ${elapsed} ms`);
  assert.equal(post.retry_strategy, 'reconcile');
  assert.equal(hanging.count('/v1/payments'), 1);

  started = Date.now();
  await fetchProblem(`${slowWg.url}/v1/payments/p_1`, {}, 504, 'upstream_timeout');
  elapsed = Date.now() - started;
  assert.ok(elapsed >= 890 && elapsed < 4000, `answered after ${elapsed} ms`);
  assert.equal(hanging.count('/v1/payments/p_1'), 3, 'a read is safe to retry (maxAttempts 3); the write above was sent once');
});
