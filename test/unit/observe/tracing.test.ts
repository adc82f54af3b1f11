// Tracing's pure parts: when it is on (the env var decides), which attributes a request and an
// attempt carry; and, read from the source, that with it off not a module of the SDK is imported.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  attemptAttributes,
  attemptEndAttributes,
  hostParts,
  requestAttributes,
  responseAttributes,
} from '../../../src/observe/trace-attributes.js';
import type { ResponseFacts } from '../../../src/observe/trace-types.js';
import { tracingEnabled } from '../../../src/observe/tracing.js';

test('tracing is on only with an OTLP endpoint, and off whatever the endpoint when the standard switches say so', () => {
  const endpoint = 'http://127.0.0.1:4318';
  assert.equal(tracingEnabled({}), false);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: '' }), false);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }), false);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: endpoint }), false);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }), true);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${endpoint}/v1/traces` }), true);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: 'TRUE' }), false);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SDK_DISABLED: 'false' }), true);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: 'none' }), false);
  assert.equal(tracingEnabled({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_TRACES_EXPORTER: 'otlp' }), true);
});

test('hostParts: a Host header as address and port; an IPv6 literal without its brackets', () => {
  assert.deepEqual(hostParts('127.0.0.1:8787'), { address: '127.0.0.1', port: 8787 });
  assert.deepEqual(hostParts('localhost'), { address: 'localhost', port: undefined });
  assert.deepEqual(hostParts('[::1]:8787'), { address: '::1', port: 8787 });
  assert.deepEqual(hostParts('[::1]'), { address: '::1', port: undefined });
});

test('a request span starts with the method, the path without its query string and the address it was sent to', () => {
  assert.deepEqual(requestAttributes('POST', '/v1/payments?api_key=secret', 'writeguard:8787'), {
    'http.request.method': 'POST',
    'url.path': '/v1/payments',
    'url.scheme': 'http',
    'server.address': 'writeguard',
    'server.port': 8787,
  });
  assert.deepEqual(requestAttributes('GET', '/v1/items', undefined), {
    'http.request.method': 'GET',
    'url.path': '/v1/items',
    'url.scheme': 'http',
  });
});

const facts: ResponseFacts = {
  status: 201,
  upstream: 'stripe',
  outcome: 'forwarded',
  code: null,
  keySource: 'client',
  keyHash: 'ab12',
  attempts: 1,
  clientGone: false,
};

test('a request span ends with what the response line says; only a 5xx is its error, typed by its code', () => {
  assert.deepEqual(responseAttributes(facts), {
    attributes: {
      'http.response.status_code': 201,
      'writeguard.outcome': 'forwarded',
      'writeguard.attempts': 1,
      'writeguard.upstream': 'stripe',
      'writeguard.key_source': 'client',
      'writeguard.idempotency_key': 'ab12',
    },
    error: null,
  });
  const inUse = responseAttributes({ ...facts, status: 409, outcome: 'rejected', code: 'idempotency_key_in_use', attempts: 0 });
  assert.equal(inUse.error, null);
  assert.equal(inUse.attributes['writeguard.code'], 'idempotency_key_in_use');
  const unknown = responseAttributes({ ...facts, status: 504, outcome: 'unknown', code: 'outcome_unknown', clientGone: true });
  assert.equal(unknown.error, 'outcome_unknown');
  assert.equal(unknown.attributes['error.type'], 'outcome_unknown');
  assert.equal(unknown.attributes['writeguard.client_gone'], true);
  // An upstream's own 5xx passed through, with no code read from it: typed by its status.
  assert.equal(responseAttributes({ ...facts, status: 502, code: null }).error, '502');
  const unkeyed = responseAttributes({ ...facts, upstream: null, keySource: null, keyHash: null });
  assert.deepEqual(Object.keys(unkeyed.attributes).sort(), ['http.response.status_code', 'writeguard.attempts', 'writeguard.outcome']);
});

test('an attempt span names the upstream server and the URL without its query string; a resend is counted', () => {
  const req = {
    origin: 'https://api.stripe.com',
    path: '/v1/charges?expand[]=x',
    method: 'POST',
    headers: {},
    body: null,
    timeoutMs: 1000,
  };
  assert.deepEqual(attemptAttributes('stripe', req, 0), {
    'http.request.method': 'POST',
    'server.address': 'api.stripe.com',
    'server.port': 443,
    'url.full': 'https://api.stripe.com/v1/charges',
    'writeguard.upstream': 'stripe',
  });
  const resent = attemptAttributes('local', { ...req, origin: 'http://[::1]:3000' }, 2);
  assert.deepEqual(
    [resent['server.address'], resent['server.port'], resent['url.full'], resent['http.request.resend_count']],
    ['::1', 3000, 'http://[::1]:3000/v1/charges', 2],
  );
  assert.equal(attemptAttributes('plain', { ...req, origin: 'http://upstream' }, 0)['server.port'], 80);
});

test("an attempt span ends with the upstream's status (4xx and 5xx are errors), or its failure", () => {
  const answer = (status: number) => ({ kind: 'answer' as const, status, headers: {}, body: Buffer.alloc(0) });
  assert.deepEqual(attemptEndAttributes(answer(201)), { attributes: { 'http.response.status_code': 201 }, error: null });
  assert.deepEqual(attemptEndAttributes(answer(429)), {
    attributes: { 'http.response.status_code': 429, 'error.type': '429' },
    error: '429',
  });
  assert.deepEqual(attemptEndAttributes({ kind: 'not_sent', reason: 'ECONNREFUSED' }), {
    attributes: { 'error.type': 'ECONNREFUSED', 'writeguard.attempt.failure': 'not_sent' },
    error: 'ECONNREFUSED',
  });
  assert.deepEqual(attemptEndAttributes({ kind: 'no_answer', reason: 'timeout', timedOut: true }), {
    attributes: { 'error.type': 'timeout', 'writeguard.attempt.failure': 'no_answer' },
    error: 'timeout',
  });
});

const SRC = fileURLToPath(new URL('../../../src', import.meta.url));
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => (statSync(join(dir, name)).isDirectory() ? files(join(dir, name)) : [join(dir, name)]));

test('with tracing off no module of the SDK is loaded: only files behind the dynamic import name it', () => {
  const sources = files(SRC).filter((f) => f.endsWith('.ts'));
  const text = (f: string): string => readFileSync(f, 'utf8');
  // A static import of the SDK (types only excepted: they are erased) …
  const sdkUsers = sources.filter((f) => /^import\s+(?!type\b)[^;]*?from\s+'@opentelemetry\//m.test(text(f))).map((f) => relative(SRC, f));
  assert.deepEqual(sdkUsers.sort(), ['observe/otel-tracing.ts', 'observe/trace-attributes.ts']);
  // … only in files no other file imports statically; otel-tracing.ts is reached by tracing.ts's import() alone.
  for (const user of ['otel-tracing', 'trace-attributes']) {
    const importers = sources.filter((f) => new RegExp(`^import\\s+(?!type\\b)[^;]*?from\\s+'[./]*${user}\\.js'`, 'm').test(text(f)));
    assert.deepEqual(
      importers.map((f) => relative(SRC, f)),
      user === 'otel-tracing' ? [] : ['observe/otel-tracing.ts'],
      `${user}.ts is imported statically`,
    );
  }
  assert.match(text(join(SRC, 'observe/tracing.ts')), /await import\('\.\/otel-tracing\.js'\)/);
});
