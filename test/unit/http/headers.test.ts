// Header hygiene at the proxy boundary, pure (RFC 9110 §7.6.1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentResponseHeaders, firstHeader, upstreamRequestHeaders, valuesOf } from '../../../src/http/headers.js';

test('upstreamRequestHeaders strips hop-by-hop headers, forwarding headers and Proxy-Authorization, and sets Host', () => {
  const out = upstreamRequestHeaders(
    {
      host: 'evil.test',
      connection: 'keep-alive, X-Secret-Hop',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      te: 'trailers',
      trailer: 'x-t',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      'proxy-authorization': 'Basic c2VjcmV0',
      'proxy-authenticate': 'Basic',
      forwarded: 'for=1.2.3.4;host=evil.test',
      'x-forwarded-for': '1.2.3.4',
      'x-forwarded-host': 'evil.test',
      'x-forwarded-proto': 'https',
      'x-real-ip': '1.2.3.4',
      expect: '100-continue',
      'x-secret-hop': 'hop only',
      authorization: 'Bearer sk_test_1',
      'content-type': 'application/json',
      'content-length': '12',
      'idempotency-key': 'k1',
      'x-custom': ['a', 'b'],
      'x-undefined': undefined,
    },
    'api.example.com:8443',
  );
  assert.deepEqual(out, {
    host: 'api.example.com:8443',
    authorization: 'Bearer sk_test_1',
    'content-type': 'application/json',
    'content-length': '12',
    'idempotency-key': 'k1',
    'x-custom': ['a', 'b'],
  });
});

test('Connection-listed tokens are stripped whatever their case and spacing, also from several Connection values', () => {
  const out = upstreamRequestHeaders({ connection: ['Close ,  X-A', 'x-b'], 'x-a': '1', 'x-b': '2', 'x-c': '3' }, 'h');
  assert.deepEqual(out, { 'x-c': '3', host: 'h' });
});

test('upstreamRequestHeaders sets Host even when the agent sent none', () => {
  assert.deepEqual(upstreamRequestHeaders({}, '127.0.0.1:9000'), { host: '127.0.0.1:9000' });
});

test('upstreamRequestHeaders does not change its input', () => {
  const input = { host: 'a', connection: 'x-a', 'x-a': '1' };
  upstreamRequestHeaders(input, 'b');
  assert.deepEqual(input, { host: 'a', connection: 'x-a', 'x-a': '1' });
});

test('agentResponseHeaders strips hop-by-hop headers and Connection-listed ones, keeps the rest', () => {
  const out = agentResponseHeaders({
    connection: 'keep-alive, x-upstream-hop',
    'keep-alive': 'timeout=5',
    'transfer-encoding': 'chunked',
    'proxy-authenticate': 'Basic',
    upgrade: 'h2c',
    trailer: 'x-t',
    'x-upstream-hop': 'internal',
    'content-type': 'application/json',
    'request-id': 'req_1',
    'set-cookie': ['a=1', 'b=2'],
    location: '/elsewhere',
  });
  assert.deepEqual(out, {
    'content-type': 'application/json',
    'request-id': 'req_1',
    'set-cookie': ['a=1', 'b=2'],
    location: '/elsewhere',
  });
});

test("agentResponseHeaders keeps forwarding-looking headers an upstream sends (only the agent's are dropped)", () => {
  assert.deepEqual(agentResponseHeaders({ 'x-forwarded-for': '1.2.3.4', host: 'x' }), { 'x-forwarded-for': '1.2.3.4', host: 'x' });
});

test('firstHeader takes the first of repeated values', () => {
  assert.equal(firstHeader(['a', 'b']), 'a');
  assert.equal(firstHeader('a'), 'a');
  assert.equal(firstHeader(undefined), undefined);
});

test('valuesOf gives every value of one header, any case, in order, as headersDistinct would', () => {
  const raw = ['Host', 'x', 'Idempotency-Key', 'a', 'content-type', 'application/json', 'IDEMPOTENCY-KEY', 'b'];
  assert.deepEqual(valuesOf(raw, 'idempotency-key'), ['a', 'b']);
  assert.deepEqual(valuesOf(raw, 'content-type'), ['application/json']);
  assert.equal(valuesOf(raw, 'stripe-account'), undefined);
});
