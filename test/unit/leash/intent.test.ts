// The intent of a write (DESIGN §10.1), pure: the same meaning hashes alike whatever the wording.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'lossless-json';
import { intentHash, type IntentInput } from '../../../src/leash/intent.js';

const base: IntentInput = {
  upstream: 'payments',
  method: 'POST',
  route: 'POST /v1/payments',
  headers: [['stripe-account', 'acct_1']],
  credential: 'cred-hash',
  fields: ['body:amount', 'body:currency', 'body:destination', 'body:metadata.order_id'],
  json: parse('{"amount":"24.50","currency":"usd","destination":"acct_9","description":"Pay Bob for lunch","metadata":{"order_id":"o_1"}}'),
};
const hashOf = (changes: Partial<IntentInput>): string => intentHash({ ...base, ...changes });
const withBody = (body: string): string => hashOf({ json: parse(body) });

test('reworded free text and reordered members give the same intent', () => {
  const reworded = withBody(
    '{"metadata":{"note":"lunch, thanks!","order_id":"o_1"},"destination":"acct_9","description":"Lunch money for Bob","currency":"usd","amount":"24.50"}',
  );
  assert.equal(reworded, intentHash(base));
  assert.equal(withBody('{"amount":"24.50","currency":"usd","destination":"acct_9","metadata":{"order_id":"o_1"}}'), intentHash(base));
  assert.match(intentHash(base), /^[A-Za-z0-9_-]{43}$/, 'sha256, base64url');
});

test('numbers count exactly as written: "24.50", 24.50 and 24.5 differ', () => {
  const amount = (text: string): string =>
    withBody(`{"amount":${text},"currency":"usd","destination":"acct_9","metadata":{"order_id":"o_1"}}`);
  const hashes = ['"24.50"', '24.50', '24.5', '2450', '"24.5"', '24.500'].map(amount);
  assert.equal(new Set(hashes).size, hashes.length);
  assert.equal(amount('"24.50"'), intentHash(base));
});

test('a missing field differs from null, from an empty string and from every other value', () => {
  const dest = (member: string): string => withBody(`{"amount":"24.50","currency":"usd",${member}"metadata":{"order_id":"o_1"}}`);
  const hashes = [dest(''), dest('"destination":null,'), dest('"destination":"",'), dest('"destination":"m",'), dest('"destination":{},')];
  assert.equal(new Set(hashes).size, hashes.length);
  assert.equal(hashOf({ json: undefined }), hashOf({ json: parse('{}') }), 'a body that is not JSON has every field missing');
});

test('nested values count whole and canonically', () => {
  const meta = (m: string): string => withBody(`{"amount":"24.50","currency":"usd","destination":"acct_9","metadata":${m}}`);
  const fields: IntentInput['fields'] = ['body:metadata'];
  const whole = (m: string): string => hashOf({ fields, json: parse(`{"metadata":${m}}`) });
  assert.equal(whole('{"a":1,"b":[1,2]}'), whole('{"b":[1,2],"a":1}'));
  assert.notEqual(whole('{"a":1,"b":[1,2]}'), whole('{"a":1,"b":[2,1]}'));
  assert.notEqual(meta('{"order_id":"o_2"}'), intentHash(base));
});

test('upstream, method, route, each header, the credential and the field list each change it', () => {
  const variants = [
    intentHash(base),
    hashOf({ upstream: 'payouts' }),
    hashOf({ method: 'PUT' }),
    hashOf({ route: '/v1/payments' }),
    hashOf({ headers: [] }),
    hashOf({ headers: [['stripe-account', 'acct_2']] }),
    hashOf({ headers: [['stripe-context', 'acct_1']] }),
    hashOf({ credential: undefined }),
    hashOf({ credential: 'other' }),
    hashOf({ credential: '' }),
    hashOf({ fields: ['body:amount', 'body:currency', 'body:destination'] }),
  ];
  assert.equal(new Set(variants).size, variants.length);
});

test('parts cannot run into each other', () => {
  const a = hashOf({ upstream: 'pay', method: 'mentsPOST' });
  const b = hashOf({ upstream: 'payments', method: 'POST' });
  assert.notEqual(a, b);
  const h1 = hashOf({ headers: [['a', 'b:c']] });
  const h2 = hashOf({ headers: [['a:b', 'c']] });
  assert.notEqual(h1, h2);
  const f1 = hashOf({ fields: ['body:a'], json: parse('{"a":"x"}') });
  const f2 = hashOf({ fields: ['body:a', 'body:b'], json: parse('{"a":"x"}') });
  assert.notEqual(f1, f2);
});

test('the order of the configured fields does not matter', () => {
  assert.equal(hashOf({ fields: [...base.fields].reverse() }), intentHash(base));
});

test('an intent hashes as it did in earlier versions: writes already in the window still match after an upgrade', () => {
  assert.equal(intentHash(base), '66eL3wjIOWA8LTRen5D7lkrUiONFuwFWPL5alZDMCT8');
  const plain: IntentInput = {
    upstream: 'p',
    method: 'POST',
    route: '/x',
    headers: [],
    fields: ['body:amount', 'body:note'],
    json: parse('{"amount":24.50,"note":"naïve ✓"}'),
  };
  assert.equal(intentHash(plain), 'bEznXzhv8Ts7cW_tqIvfNeO12G8tqjoF1NRUGQxoj7Q');
});
