// Allow-list rules on a write's JSON fields (DESIGN §10.3), pure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkPolicy, type PolicyRule } from '../../../src/leash/policy.js';

const rules: PolicyRule[] = [
  { match: ['POST /v1/payments'], field: 'body:destination', in: ['acct_1', 'acct_2'], code: 'recipient_not_allowed' },
  { match: ['POST /v1/payments', 'POST /v1/payouts'], field: 'body:currency', in: ['usd', 'eur'], code: 'asset_not_allowed' },
  { match: ['POST /v1/transfers/*'], field: 'body:meta.reason', in: ['refund'], code: 'policy_violation' },
];

test('a write inside every matching list passes; rules of other routes do not apply', () => {
  assert.equal(checkPolicy(rules, 'POST', '/v1/payments', { destination: 'acct_1', currency: 'usd' }), null);
  assert.equal(checkPolicy(rules, 'POST', '/v1/payouts?x=1', { currency: 'eur' }), null);
  assert.equal(checkPolicy(rules, 'GET', '/v1/payments', {}), null);
  assert.equal(checkPolicy(rules, 'POST', '/v1/refunds', {}), null);
});

test('a value outside the list gets the rule’s code; the detail says what matched and what to do', () => {
  const err = checkPolicy(rules, 'POST', '/v1/payments', { destination: 'acct_9', currency: 'usd' });
  assert.equal(err?.code, 'recipient_not_allowed');
  assert.equal(err?.status, 403);
  assert.match(err!.message, /destination "acct_9"/);
  assert.match(err!.message, /allowed: acct_1, acct_2/);
  assert.match(err!.message, /Nothing was sent/);
  assert.equal(checkPolicy(rules, 'POST', '/v1/payments', { destination: 'acct_2', currency: 'gbp' })?.code, 'asset_not_allowed');
  assert.equal(checkPolicy(rules, 'POST', '/v1/transfers/t_1', { meta: { reason: 'gift' } })?.code, 'policy_violation');
});

test('matching is exact and case-sensitive', () => {
  assert.equal(checkPolicy(rules, 'POST', '/v1/payments', { destination: 'ACCT_1', currency: 'usd' })?.code, 'recipient_not_allowed');
  assert.equal(checkPolicy(rules, 'POST', '/v1/payments', { destination: 'acct_1 ', currency: 'usd' })?.code, 'recipient_not_allowed');
  assert.equal(checkPolicy(rules, 'POST', '/v1/payments', { destination: 'acct_1', currency: 'USD' })?.code, 'asset_not_allowed');
});

test('a missing field, a field of another type, or a body that is not JSON is refused', () => {
  assert.match(checkPolicy(rules, 'POST', '/v1/payments', { currency: 'usd' })!.message, /has no destination/);
  assert.equal(
    checkPolicy(rules, 'POST', '/v1/payments', { destination: { id: 'acct_1' }, currency: 'usd' })?.code,
    'recipient_not_allowed',
  );
  assert.equal(checkPolicy(rules, 'POST', '/v1/payments', { destination: true, currency: 'usd' })?.code, 'recipient_not_allowed');
  assert.equal(checkPolicy(rules, 'POST', '/v1/payments', undefined)?.code, 'recipient_not_allowed');
});

test('a long allow-list is summarised in the detail', () => {
  const many: PolicyRule[] = [
    { match: ['POST /v1/payments'], field: 'body:to', in: Array.from({ length: 25 }, (_, i) => `a${i}`), code: 'recipient_not_allowed' },
  ];
  assert.match(checkPolicy(many, 'POST', '/v1/payments', { to: 'zz' })!.message, /a9, and 15 more\)/);
});
