// Proves that a request through writeguard gets what the upstream would have answered directly — the
// same status, body bytes and end-to-end headers (both Set-Cookie lines included) — and that the
// upstream receives the same method, path, query string and body, for GET, POST, PUT, DELETE and HEAD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { behindWriteguard } from '../helpers/behind-writeguard.js';
import { deterministic, type Received } from '../helpers/upstream.js';

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

const api = behindWriteguard(deterministic, { name: 'api' });

const cases: Array<{ method: string; path: string; body?: string; type?: string }> = [
  { method: 'GET', path: '/v1/charges?limit=3&starting_after=ch_1&q=a%20b' },
  { method: 'POST', path: '/v1/charges', body: '{"amount":1000,"currency":"eur"}', type: 'application/json' },
  { method: 'PUT', path: '/v1/customers/cus_1', body: '{"name":"Ada"}', type: 'application/json' },
  { method: 'DELETE', path: '/v1/customers/cus_1' },
  { method: 'HEAD', path: '/v1/charges/ch_1' },
];

for (const c of cases) {
  test(`${c.method} through writeguard gets the same status, body bytes and headers as directly`, async () => {
    const { up, wg } = api;
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
