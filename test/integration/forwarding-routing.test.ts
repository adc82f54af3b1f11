// Proves where a request goes: the target URL's own path is prepended; with several prefixes the
// longest one wins and is stripped; an upstream with a listener of its own is reached there (and not
// through the main listener).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream } from '../helpers/upstream.js';
import { startWriteguard } from '../helpers/writeguard.js';

test("the target URL's own path is prepended", async (t) => {
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
  assert.deepEqual(
    baseUp.received.map((r) => `${r.method} ${r.url}`),
    ['GET /api/v1/x?a=1', 'POST /api/v1/x'],
  );
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
    const res = await fetch(twoWg.url + path, {
      method,
      ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}),
    });
    assert.equal(res.status, method === 'POST' ? 201 : 200, `${method} ${path}`);
    await res.arrayBuffer();
  }
  assert.deepEqual(
    pay.received.map((r) => `${r.method} ${r.url}`),
    ['GET /base/v1/x?q=1', 'POST /base/v1/x', 'GET /base/'],
  );
  assert.deepEqual(
    rest.received.map((r) => `${r.method} ${r.url}`),
    ['GET /payments', 'POST /payments', 'GET /v1/other'],
  );
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
  assert.deepEqual(
    own.received.map((r) => `${r.method} ${r.url}`),
    ['POST /v1/x', 'GET /v1/y'],
  );
  assert.deepEqual(
    main.received.map((r) => `${r.method} ${r.url}`),
    ['GET /v1/z'],
  );
});
