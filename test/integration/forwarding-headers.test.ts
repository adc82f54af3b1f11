// Proves that writeguard forwards only end-to-end headers, both ways: upstream, Host is the target's
// and forwarding, proxy and Connection-listed headers are dropped (credentials and other end-to-end
// headers kept); back to the client, the upstream's hop-by-hop headers are dropped. For GET and POST.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { behindWriteguard } from '../helpers/behind-writeguard.js';
import { nodeRequest } from '../helpers/node-http.js';
import { deterministic, startUpstream } from '../helpers/upstream.js';
import { startWriteguard } from '../helpers/writeguard.js';

const api = behindWriteguard(deterministic, { name: 'api' });

for (const method of ['GET', 'POST']) {
  test(`${method}: Host is rewritten to the target; forwarding, proxy and Connection-listed headers are not sent upstream`, async () => {
    const { up, wg } = api;
    const before = up.received.length;
    const body = method === 'POST' ? Buffer.from('{"x":1}') : undefined;
    const res = await nodeRequest(
      `${wg.url}/v1/hygiene`,
      method,
      {
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
      },
      body,
    );
    assert.equal(res.status, method === 'POST' ? 201 : 200);
    assert.equal(up.received.length, before + 1);
    const got = up.received.at(-1)!;
    assert.equal(got.headers.host, `127.0.0.1:${up.port}`);
    for (const name of [
      'x-secret-hop',
      'keep-alive',
      'proxy-authorization',
      'forwarded',
      'x-forwarded-for',
      'x-forwarded-host',
      'x-forwarded-proto',
      'x-real-ip',
    ]) {
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
      const res = await nodeRequest(`${hopWg.url}/v1/x`, method, method === 'POST' ? { 'content-length': 0 } : {});
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
