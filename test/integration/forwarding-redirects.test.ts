// Proves that an upstream's redirect goes back to the client as it was sent and is never followed:
// the redirect target receives nothing, not even a connection. For GET and POST.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream } from '../helpers/upstream.js';
import { startWriteguard } from '../helpers/writeguard.js';

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
    const res = await fetch(`${rWg.url}/v1/go`, {
      method,
      redirect: 'manual',
      ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}),
    });
    assert.equal(res.status, 302);
    assert.equal(res.headers.get('location'), `${decoy.url}/elsewhere`);
    await res.arrayBuffer();
    assert.equal(redirecting.count('/v1/go'), 1);
    assert.equal(decoy.received.length, 0);
    assert.equal(decoy.connections(), 0);
  });
}
