// Proves that a request cannot choose where writeguard sends it: an absolute-form target or CONNECT
// never reaches another host, a spoofed Host or X-Forwarded-Host still reaches only the configured
// upstream (with the target's own Host), and two Host headers or a path that climbs out of the
// prefix (dot segments, encoded or not) are 400 bad_request with nothing sent upstream.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { behindWriteguard } from '../helpers/behind-writeguard.js';
import { nodeRequest } from '../helpers/node-http.js';
import { expectRawProblem } from '../helpers/problem.js';
import { portOf, rawRequest } from '../helpers/raw-http.js';
import { startUpstream } from '../helpers/upstream.js';
import { startWriteguard } from '../helpers/writeguard.js';

const pay = behindWriteguard(undefined, { name: 'pay', prefix: '/pay', idempotency: { maxBodyBytes: 1024 } });

test('an absolute-form target is 400 bad_request and never reaches another host', async (t) => {
  const { up, wg } = pay;
  const decoy = await startUpstream(undefined, '127.0.0.2');
  t.after(() => decoy.close());
  const before = up.received.length;
  const port = portOf(wg.url);
  const get = await rawRequest(port, `GET http://127.0.0.2:${decoy.port}/x HTTP/1.1\r\nHost: 127.0.0.2:${decoy.port}\r\n\r\n`);
  expectRawProblem(get, 400, 'bad_request');
  const prefixed = await rawRequest(
    port,
    `POST http://127.0.0.2:${decoy.port}/pay/v1/x HTTP/1.1\r\nHost: 127.0.0.2:${decoy.port}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
  );
  expectRawProblem(prefixed, 400, 'bad_request');
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
    const { up, wg } = pay;
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
    const viaHttp = await nodeRequest(
      `${wg.url}/pay/v1/y`,
      method,
      { host: 'evil.test', 'x-forwarded-host': 'evil.test', 'content-length': body.length },
      body,
    );
    assert.equal(viaHttp.status, method === 'POST' ? 201 : 200);
    assert.equal(up.received.at(-1)!.headers.host, `127.0.0.1:${up.port}`);
    assert.equal(up.received.length, before + 2);
  });
}

test('two Host headers are 400 bad_request; the upstream sees nothing', async () => {
  const { up, wg } = pay;
  const before = up.received.length;
  const port = portOf(wg.url);
  expectRawProblem(
    await rawRequest(port, `GET /pay/v1/x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nHost: evil.test\r\n\r\n`),
    400,
    'bad_request',
  );
  expectRawProblem(
    await rawRequest(port, `POST /pay/v1/x HTTP/1.1\r\nHost: evil.test\r\nhost: 127.0.0.1:${port}\r\nContent-Length: 2\r\n\r\n{}`),
    400,
    'bad_request',
  );
  assert.equal(up.received.length, before);
});

test('path traversal is 400 bad_request; the upstream sees nothing', async (t) => {
  const { up, wg } = pay;
  const root = await startWriteguard({ upstreams: [{ name: 'root', target: `${up.url}/api` }] });
  t.after(() => root.close());
  const before = up.received.length;
  for (const [base, paths] of [
    [root.url, ['/../x', '/%2e%2e/x', '/%2E%2E/x', '/v1/../../x', '/v1/..%2f..%2fx', '/v1/%2e%2e%5cx', '/./x']],
    [wg.url, ['/pay/../x', '/pay/%2e%2e/x', '/pay/v1/%2e%2e/%2e%2e/admin']],
  ] as const) {
    for (const path of paths) {
      for (const method of ['GET', 'POST']) {
        const res = await rawRequest(
          portOf(base),
          `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
        );
        expectRawProblem(res, 400, 'bad_request');
      }
    }
  }
  assert.equal(up.received.length, before);
});
