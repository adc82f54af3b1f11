// Routing, pure: prefix stripping, the path sent upstream, dot segments, allow-list patterns, listeners.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/load.js';
import { matchesRoute } from '../../../src/config/route-pattern.js';
import { hasDotSegment, isAllowed, listeners, stripPrefix, upstreamPath } from '../../../src/proxy/route.js';

test('stripPrefix removes the prefix and keeps the query string as sent', () => {
  assert.equal(stripPrefix('/pay/v1/x?a=1&b=%20', '/pay'), '/v1/x?a=1&b=%20');
  assert.equal(stripPrefix('/pay', '/pay'), '/');
  assert.equal(stripPrefix('/pay?a=1', '/pay'), '/?a=1');
  assert.equal(stripPrefix('/pay/', '/pay'), '/');
  assert.equal(stripPrefix('/v1/x?q', '/'), '/v1/x?q');
  assert.equal(stripPrefix('/a/b/c', '/a/b'), '/c');
});

test("upstreamPath prepends the target URL's own path", () => {
  assert.equal(upstreamPath('/', '/v1/x'), '/v1/x');
  assert.equal(upstreamPath('', '/v1/x'), '/v1/x');
  assert.equal(upstreamPath('/api', '/v1/x'), '/api/v1/x');
  assert.equal(upstreamPath('/api/', '/v1/x?a=1'), '/api/v1/x?a=1');
  assert.equal(upstreamPath('/api/v2', '/'), '/api/v2/');
});

test('hasDotSegment finds "." and ".." segments, also percent-encoded or behind backslashes', () => {
  for (const url of [
    '/../x',
    '/%2e%2e/x',
    '/%2E%2E/x',
    '/.%2e/x',
    '/a/./b',
    '/a/..',
    '/a/%2e',
    '/a%2f..%2fb',
    '/a\\..\\b',
    '/a%5c..%5cb',
    '..',
    '/v1/.',
  ]) {
    assert.equal(hasDotSegment(url), true, url);
  }
  for (const url of ['/', '/v1/x', '/a..b/c', '/...', '/.well-known/x', '/v1/x?next=/../y', '/v1/x?p=%2e%2e', '/a/b.c/d']) {
    assert.equal(hasDotSegment(url), false, url);
  }
});

test('matchesRoute: exact paths, a trailing * matches any rest, * matches any method, query ignored', () => {
  assert.equal(matchesRoute('POST /v1/payments', 'POST', '/v1/payments'), true);
  assert.equal(matchesRoute('POST /v1/payments', 'POST', '/v1/payments?expand=x'), true);
  assert.equal(matchesRoute('POST /v1/payments', 'GET', '/v1/payments'), false);
  assert.equal(matchesRoute('POST /v1/payments', 'POST', '/v1/payments/1'), false);
  assert.equal(matchesRoute('POST /v1/payments', 'POST', '/v1/payment'), false);
  assert.equal(matchesRoute('GET /v1/*', 'GET', '/v1/x'), true);
  assert.equal(matchesRoute('GET /v1/*', 'GET', '/v1/'), true);
  assert.equal(matchesRoute('GET /v1/*', 'GET', '/v1/a/b?c=d'), true);
  assert.equal(matchesRoute('GET /v1/*', 'GET', '/v2/x'), false);
  assert.equal(matchesRoute('GET /v1/*', 'POST', '/v1/x'), false);
  assert.equal(matchesRoute('* /v1/*', 'DELETE', '/v1/x'), true);
  assert.equal(matchesRoute('* /v1/*', 'DELETE', '/v2/x'), false);
  assert.equal(matchesRoute('POST *', 'POST', '/anything/at/all?q=1'), true);
  assert.equal(matchesRoute('POST *', 'PUT', '/v1/x'), false);
});

test('isAllowed: no list allows everything; a list allows only its matches', () => {
  assert.equal(isAllowed(null, 'POST', '/anything'), true);
  const allow = ['POST /v1/payments', 'GET /v1/*'];
  assert.equal(isAllowed(allow, 'POST', '/v1/payments'), true);
  assert.equal(isAllowed(allow, 'GET', '/v1/payments/1'), true);
  assert.equal(isAllowed(allow, 'POST', '/v1/x'), false);
  assert.equal(isAllowed(allow, 'DELETE', '/v1/payments'), false);
  assert.equal(isAllowed([], 'GET', '/'), false);
});

test('listeners: the main listener carries the prefixed upstreams, each `listen` upstream gets its own', () => {
  const config = parseConfig({
    listen: { host: '127.0.0.1', port: 8000 },
    upstreams: [
      { name: 'pay', target: 'http://127.0.0.1:1', prefix: '/pay' },
      { name: 'own', target: 'http://127.0.0.1:2', listen: { port: 8001 } },
      { name: 'root', target: 'http://127.0.0.1:3' },
    ],
  });
  const ls = listeners(config);
  assert.equal(ls.length, 2);
  assert.equal(ls[0]!.port, 8000);
  assert.deepEqual(
    ls[0]!.routes.map((r) => [r.prefix, r.upstream.name]),
    [
      ['/pay', 'pay'],
      ['/', 'root'],
    ],
  );
  assert.deepEqual({ host: ls[1]!.host, port: ls[1]!.port }, { host: '127.0.0.1', port: 8001 });
  assert.deepEqual(
    ls[1]!.routes.map((r) => [r.prefix, r.upstream.name]),
    [['/', 'own']],
  );
});

test('listeners: with only `listen` upstreams there is no main listener', () => {
  const config = parseConfig({ upstreams: [{ name: 'own', target: 'http://127.0.0.1:2', listen: { port: 8001 } }] });
  const ls = listeners(config);
  assert.equal(ls.length, 1);
  assert.equal(ls[0]!.port, 8001);
});
