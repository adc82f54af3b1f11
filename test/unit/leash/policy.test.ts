// Allow-list rules on a write's JSON fields (DESIGN §10.3), pure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'lossless-json';
import { checkPolicy, type PolicyRule } from '../../../src/leash/policy.js';

/** A body as the guard reads it: lossless-json, numbers kept as written. */
const body = (value: unknown): unknown => parse(JSON.stringify(value));

const rules: PolicyRule[] = [
  { match: ['POST /v1/payments'], field: 'body:destination', in: ['acct_1', 'acct_2'], code: 'recipient_not_allowed' },
  { match: ['POST /v1/payments', 'POST /v1/payouts'], field: 'body:currency', in: ['usd', 'eur'], code: 'asset_not_allowed' },
  { match: ['POST /v1/transfers/*'], field: 'body:meta.reason', in: ['refund'], code: 'policy_violation' },
];

test('a write inside every matching list passes; rules of other routes do not apply', () => {
  assert.equal(
    checkPolicy(rules, { method: 'POST', apiPath: '/v1/payments', tool: null }, body({ destination: 'acct_1', currency: 'usd' })),
    null,
  );
  assert.equal(checkPolicy(rules, { method: 'POST', apiPath: '/v1/payouts?x=1', tool: null }, body({ currency: 'eur' })), null);
  assert.equal(checkPolicy(rules, { method: 'GET', apiPath: '/v1/payments', tool: null }, body({})), null);
  assert.equal(checkPolicy(rules, { method: 'POST', apiPath: '/v1/refunds', tool: null }, body({})), null);
});

test('a value outside the list gets the rule’s code; the detail says what matched and what to do', () => {
  const err = checkPolicy(rules, { method: 'POST', apiPath: '/v1/payments', tool: null }, body({ destination: 'acct_9', currency: 'usd' }));
  assert.equal(err?.code, 'recipient_not_allowed');
  assert.equal(err?.status, 403);
  assert.match(err!.message, /destination "acct_9"/);
  assert.match(err!.message, /allowed: acct_1, acct_2/);
  assert.match(err!.message, /Nothing was sent/);
  assert.equal(
    checkPolicy(rules, { method: 'POST', apiPath: '/v1/payments', tool: null }, body({ destination: 'acct_2', currency: 'gbp' }))?.code,
    'asset_not_allowed',
  );
  assert.equal(
    checkPolicy(rules, { method: 'POST', apiPath: '/v1/transfers/t_1', tool: null }, body({ meta: { reason: 'gift' } }))?.code,
    'policy_violation',
  );
});

test('matching is exact and case-sensitive', () => {
  assert.equal(
    checkPolicy(rules, { method: 'POST', apiPath: '/v1/payments', tool: null }, body({ destination: 'ACCT_1', currency: 'usd' }))?.code,
    'recipient_not_allowed',
  );
  assert.equal(
    checkPolicy(rules, { method: 'POST', apiPath: '/v1/payments', tool: null }, body({ destination: 'acct_1 ', currency: 'usd' }))?.code,
    'recipient_not_allowed',
  );
  assert.equal(
    checkPolicy(rules, { method: 'POST', apiPath: '/v1/payments', tool: null }, body({ destination: 'acct_1', currency: 'USD' }))?.code,
    'asset_not_allowed',
  );
});

test('a missing field, a field of another type, or a body that is not JSON is refused', () => {
  assert.match(
    checkPolicy(rules, { method: 'POST', apiPath: '/v1/payments', tool: null }, body({ currency: 'usd' }))!.message,
    /has no destination/,
  );
  assert.equal(
    checkPolicy(rules, { method: 'POST', apiPath: '/v1/payments', tool: null }, body({ destination: { id: 'acct_1' }, currency: 'usd' }))
      ?.code,
    'recipient_not_allowed',
  );
  assert.equal(
    checkPolicy(rules, { method: 'POST', apiPath: '/v1/payments', tool: null }, body({ destination: true, currency: 'usd' }))?.code,
    'recipient_not_allowed',
  );
  assert.equal(checkPolicy(rules, { method: 'POST', apiPath: '/v1/payments', tool: null }, undefined)?.code, 'recipient_not_allowed');
});

test('a number counts as the text it was written with; null and arrays count as missing', () => {
  const codes: PolicyRule[] = [{ match: ['POST /v1/points'], field: 'body:tier', in: ['7', 'gold'], code: 'policy_violation' }];
  assert.equal(checkPolicy(codes, { method: 'POST', apiPath: '/v1/points', tool: null }, parse('{"tier":7}')), null);
  assert.equal(checkPolicy(codes, { method: 'POST', apiPath: '/v1/points', tool: null }, parse('{"tier":"7"}')), null);
  assert.match(checkPolicy(codes, { method: 'POST', apiPath: '/v1/points', tool: null }, parse('{"tier":7.0}'))!.message, /has tier "7.0"/);
  assert.match(checkPolicy(codes, { method: 'POST', apiPath: '/v1/points', tool: null }, parse('{"tier":null}'))!.message, /has no tier/);
  assert.match(
    checkPolicy(codes, { method: 'POST', apiPath: '/v1/points', tool: null }, parse('{"tier":["gold"]}'))!.message,
    /has no tier/,
  );
});

test('a TOOL rule applies to that MCP tool call only; a route rule to every write on the route', () => {
  const tools: PolicyRule[] = [
    { match: ['TOOL create_payment'], field: 'body:params.arguments.to', in: ['acct_1'], code: 'recipient_not_allowed' },
  ];
  const call = (tool: string | null, to: string) =>
    checkPolicy(tools, { method: 'POST', apiPath: '/mcp', tool }, body({ params: { arguments: { to } } }));
  assert.equal(call('create_payment', 'acct_1'), null);
  assert.equal(call('create_payment', 'acct_9')?.code, 'recipient_not_allowed');
  assert.equal(call('refund_payment', 'acct_9'), null, 'another tool');
  assert.equal(call(null, 'acct_9'), null, 'not a tool call');
  const any: PolicyRule[] = [{ ...tools[0]!, match: ['TOOL *'] }];
  assert.equal(checkPolicy(any, { method: 'POST', apiPath: '/mcp', tool: 'refund_payment' }, body({}))?.code, 'recipient_not_allowed');
});

test('a long allow-list is summarised in the detail', () => {
  const many: PolicyRule[] = [
    { match: ['POST /v1/payments'], field: 'body:to', in: Array.from({ length: 25 }, (_, i) => `a${i}`), code: 'recipient_not_allowed' },
  ];
  assert.match(
    checkPolicy(many, { method: 'POST', apiPath: '/v1/payments', tool: null }, body({ to: 'zz' }))!.message,
    /a9, and 15 more\)/,
  );
});
