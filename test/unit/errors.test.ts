// writeguard's own errors: one table, one class, one RFC 9457 body that SDKs can also read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, PROBLEM_CONTENT_TYPE, WriteguardError, toProblem, type ErrorCode } from '../../src/errors.js';

test('the table has the documented status for every code', () => {
  const expected: Record<string, number> = {
    no_route: 404,
    route_not_allowed: 403,
    identity_missing: 400,
    body_too_large: 413,
    headers_too_large: 431,
    bad_request: 400,
    idempotency_key_missing: 400,
    idempotency_key_invalid: 400,
    idempotency_key_reuse_mismatch: 422,
    idempotency_key_in_use: 409,
    idempotency_key_expired: 409,
    possible_duplicate: 409,
    response_not_replayable: 409,
    outcome_unknown: 502,
    upstream_unreachable: 502,
    upstream_timeout: 504,
    rate_limited: 429,
    store_unavailable: 503,
    recipient_not_allowed: 403,
    asset_not_allowed: 403,
    policy_violation: 403,
    limit_exceeded: 403,
    amount_invalid: 400,
    agent_paused: 423,
    approval_required: 403,
    approval_pending: 403,
    approval_denied: 403,
    approval_expired: 403,
    store_full: 503,
    draining: 503,
    unauthorized: 401,
    not_found: 404,
    invalid_agent: 400,
    invalid_resolution: 400,
    stale: 409,
    internal_error: 500,
  };
  assert.deepEqual(Object.keys(ERROR_CODES).sort(), Object.keys(expected).sort(), 'every code is in this table');
  for (const [code, status] of Object.entries(expected)) assert.equal(ERROR_CODES[code as ErrorCode]?.status, status, code);
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^[a-z]+(_[a-z]+)*$/);
    assert.ok(spec.title.length > 0, code);
    assert.ok(['no_retry', 'fix_request', 'backoff', 'reconcile', 'after_approval'].includes(spec.retryStrategy), code);
    // No idempotency error is ever a 500.
    if (code !== 'internal_error') assert.notEqual(spec.status, 500, code);
  }
});

test('toProblem has type, title, status, detail, code, retry_strategy, request_id and error{type,code,message}', () => {
  const problem = toProblem(new WriteguardError('no_route', 'no upstream is configured for /other'), 'rid-1');
  assert.deepEqual(problem, {
    type: 'https://writeguard.dev/errors/no_route',
    title: 'No upstream route matches this path',
    status: 404,
    detail: 'no upstream is configured for /other',
    code: 'no_route',
    retry_strategy: 'fix_request',
    request_id: 'rid-1',
    error: { type: 'invalid_request_error', code: 'no_route', message: 'no upstream is configured for /other' },
  });
  assert.ok(!('idempotency_key' in problem));
});

test('a distinct type URI per code', () => {
  const types = new Set(Object.keys(ERROR_CODES).map((code) => toProblem(new WriteguardError(code as ErrorCode, 'd'), 'r').type));
  assert.equal(types.size, Object.keys(ERROR_CODES).length);
});

test('a status override and an idempotency key show in the problem', () => {
  const err = new WriteguardError('outcome_unknown', 'the upstream did not answer in time', { status: 504, idempotencyKey: 'key-1' });
  assert.equal(err.status, 504);
  const problem = toProblem(err, 'rid-2');
  assert.equal(problem.status, 504);
  assert.equal(problem.code, 'outcome_unknown');
  assert.equal(problem.retry_strategy, 'reconcile');
  assert.equal(problem.idempotency_key, 'key-1');
  assert.deepEqual(problem.error, { type: 'api_error', code: 'outcome_unknown', message: 'the upstream did not answer in time' });
});

test('error.type uses the families SDKs know', () => {
  const type = (code: ErrorCode) => toProblem(new WriteguardError(code, 'd'), 'r').error.type;
  assert.equal(type('idempotency_key_in_use'), 'idempotency_error');
  assert.equal(type('idempotency_key_reuse_mismatch'), 'idempotency_error');
  assert.equal(type('possible_duplicate'), 'idempotency_error');
  assert.equal(type('rate_limited'), 'rate_limit_error');
  assert.equal(type('upstream_unreachable'), 'api_error');
  assert.equal(type('store_unavailable'), 'api_error');
  assert.equal(type('body_too_large'), 'invalid_request_error');
  assert.equal(type('route_not_allowed'), 'invalid_request_error');
});

test('WriteguardError carries code, status, headers and cause', () => {
  const cause = new Error('socket hang up');
  const err = new WriteguardError('draining', 'shutting down', { headers: { connection: 'close' }, cause });
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'WriteguardError');
  assert.equal(err.code, 'draining');
  assert.equal(err.status, 503);
  assert.deepEqual(err.headers, { connection: 'close' });
  assert.equal(err.cause, cause);
  assert.equal(err.idempotencyKey, undefined);
  assert.deepEqual(new WriteguardError('bad_request', 'x').headers, {});
});

test('the problem content type is application/problem+json', () => {
  assert.match(PROBLEM_CONTENT_TYPE, /^application\/problem\+json\b/);
});
