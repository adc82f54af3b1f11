// Proves that a request for no configured route, or for a route outside an upstream's allow-list, is
// refused with writeguard's problem (404 no_route, 403 route_not_allowed, retry strategy fix_request)
// and never reaches an upstream; an allowed route still does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { behindWriteguard } from '../helpers/behind-writeguard.js';
import { expectProblem } from '../helpers/problem.js';
import { startUpstream } from '../helpers/upstream.js';
import { startWriteguard } from '../helpers/writeguard.js';

const pay = behindWriteguard(undefined, { name: 'pay', prefix: '/pay', idempotency: { maxBodyBytes: 1024 } });

test('an unknown route is 404 no_route; the upstream sees nothing', async () => {
  const { up, wg } = pay;
  const before = up.received.length;
  const p = await expectProblem(await fetch(`${wg.url}/other`, {}), 404, 'no_route');
  assert.equal(p.retry_strategy, 'fix_request');
  await expectProblem(
    await fetch(`${wg.url}/other/v1/x`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }),
    404,
    'no_route',
  );
  await expectProblem(await fetch(`${wg.url}/payments`, {}), 404, 'no_route');
  assert.equal(up.received.length, before);
});

test('a route outside the allow-list is 403 route_not_allowed; the upstream sees nothing', async (t) => {
  const allowUp = await startUpstream();
  const allowWg = await startWriteguard({ upstreams: [{ name: 'ro', target: allowUp.url, allow: ['GET /v1/*'] }] });
  t.after(async () => {
    await allowWg.close();
    await allowUp.close();
  });
  const p = await expectProblem(
    await fetch(`${allowWg.url}/v1/x`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }),
    403,
    'route_not_allowed',
  );
  assert.equal(p.retry_strategy, 'fix_request');
  await expectProblem(await fetch(`${allowWg.url}/v1/x`, { method: 'DELETE' }), 403, 'route_not_allowed');
  await expectProblem(await fetch(`${allowWg.url}/v2/x`, {}), 403, 'route_not_allowed');
  assert.equal(allowUp.received.length, 0);
  const ok = await fetch(`${allowWg.url}/v1/x?a=1`);
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
  assert.equal(allowUp.received.length, 1);
});
