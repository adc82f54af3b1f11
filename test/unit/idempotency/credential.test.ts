// Who the caller is upstream: a hash of the credential headers it presents, stable across versions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { credentialOf } from '../../../src/idempotency/scope.js';

const raw = ['Authorization', 'Bearer sk_test_123', 'Stripe-Account', 'acct_1', 'authorization', 'Bearer two'];

test('every configured credential header counts, each value of a repeated one in order; none presented is undefined', () => {
  const both = credentialOf(raw, ['authorization', 'stripe-account']);
  assert.notEqual(both, credentialOf(raw, ['authorization']));
  assert.notEqual(both, credentialOf(raw.slice(0, 4), ['authorization', 'stripe-account']), 'the second Authorization value counts');
  assert.equal(credentialOf(['Content-Type', 'application/json'], ['authorization']), undefined);
});

test('a credential hashes as it did in earlier versions: stored answers replay to the same caller after an upgrade', () => {
  assert.equal(credentialOf(raw, ['authorization', 'stripe-account']), 'i8LfR47Jh2fUkXV1KjHcu7D3a4u8_smc-bfTPk9d6UM');
});
