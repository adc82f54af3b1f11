// Budgets (DESIGN §10.2), pure: the UTC bucket of a period, the charges a write brings, the refusal.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parse } from 'lossless-json';
import type { BudgetConfig } from '../../../src/config/leash-schema.js';
import { WriteguardError } from '../../../src/errors.js';
import {
  bucketOf,
  budgetNameOf,
  budgetsFor,
  chargesFor,
  limitExceeded,
  limitRefused,
  type BucketPeriod,
} from '../../../src/leash/budgets.js';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const bucket = (period: BucketPeriod, when: string): [string, string | null] => {
  const b = bucketOf(period, at(when));
  return [b.id, iso(b.resetAt)];
};

test('minute, hour, day, month and total buckets, and when each resets', () => {
  assert.deepEqual(bucket('minute', '2026-12-07T13:05:59.999Z'), ['m2026-12-07T13:05', '2026-12-07T13:06:00.000Z']);
  assert.deepEqual(bucket('minute', '2026-12-31T23:59:00.000Z'), ['m2026-12-31T23:59', '2027-01-01T00:00:00.000Z']);
  assert.deepEqual(bucket('hour', '2026-12-07T13:05:00.000Z'), ['h2026-12-07T13', '2026-12-07T14:00:00.000Z']);
  assert.deepEqual(bucket('hour', '2026-02-28T23:00:00.000Z'), ['h2026-02-28T23', '2026-03-01T00:00:00.000Z']);
  assert.deepEqual(bucket('day', '2026-12-07T00:00:00.000Z'), ['d2026-12-07', '2026-12-08T00:00:00.000Z']);
  assert.deepEqual(bucket('day', '2024-02-28T12:00:00.000Z'), ['d2024-02-28', '2024-02-29T00:00:00.000Z']);
  assert.deepEqual(bucket('day', '2024-02-29T12:00:00.000Z'), ['d2024-02-29', '2024-03-01T00:00:00.000Z']);
  assert.deepEqual(bucket('month', '2026-12-31T23:59:59.999Z'), ['M2026-12', '2027-01-01T00:00:00.000Z']);
  assert.deepEqual(bucket('month', '2024-02-10T00:00:00.000Z'), ['M2024-02', '2024-03-01T00:00:00.000Z']);
  assert.deepEqual(bucket('month', '2026-01-31T10:00:00.000Z'), ['M2026-01', '2026-02-01T00:00:00.000Z']);
  assert.deepEqual(bucket('month', '2026-04-30T10:00:00.000Z'), ['M2026-04', '2026-05-01T00:00:00.000Z']);
  assert.deepEqual(bucket('total', '2026-12-07T13:05:00.000Z'), ['total', null]);
});

test('ISO weeks start on Monday and belong to the year of their Thursday', () => {
  const cases: Array<[string, string, string]> = [
    ['2026-12-07T00:00:00.000Z', 'w2026-W50', '2026-12-14'],
    ['2026-12-13T23:59:59.999Z', 'w2026-W50', '2026-12-14'],
    ['2026-12-28T00:00:00.000Z', 'w2026-W53', '2027-01-04'],
    ['2026-12-31T12:00:00.000Z', 'w2026-W53', '2027-01-04'],
    ['2027-01-01T12:00:00.000Z', 'w2026-W53', '2027-01-04'],
    ['2027-01-03T23:59:59.999Z', 'w2026-W53', '2027-01-04'],
    ['2027-01-04T00:00:00.000Z', 'w2027-W01', '2027-01-11'],
    ['2020-12-31T12:00:00.000Z', 'w2020-W53', '2021-01-04'],
    ['2021-01-03T12:00:00.000Z', 'w2020-W53', '2021-01-04'],
    ['2021-01-04T12:00:00.000Z', 'w2021-W01', '2021-01-11'],
    ['2024-12-30T12:00:00.000Z', 'w2025-W01', '2025-01-06'],
    ['2025-12-29T12:00:00.000Z', 'w2026-W01', '2026-01-05'],
    ['2016-01-03T12:00:00.000Z', 'w2015-W53', '2016-01-04'],
    ['2024-02-29T12:00:00.000Z', 'w2024-W09', '2024-03-04'],
  ];
  for (const [when, id, reset] of cases) assert.deepEqual(bucket('week', when), [id, `${reset}T00:00:00.000Z`], when);
});

/** An independent ISO week: the ordinal day of this week's Thursday, in that Thursday's year. */
function oracleWeek(ms: number): string {
  const day = Math.floor(ms / 86_400_000);
  const thursday = day - ((new Date(day * 86_400_000).getUTCDay() + 6) % 7) + 3;
  const year = new Date(thursday * 86_400_000).getUTCFullYear();
  const ordinal = thursday - Date.UTC(year, 0, 1) / 86_400_000;
  return `w${year}-W${String(Math.floor(ordinal / 7) + 1).padStart(2, '0')}`;
}

test('every bucket holds its instant up to its reset, the next one starts there, ids have no spaces', () => {
  const periods: BucketPeriod[] = ['minute', 'hour', 'day', 'week', 'month'];
  const instant = fc.integer({ min: Date.UTC(1970, 0, 5), max: Date.UTC(2200, 0, 1) });
  fc.assert(
    fc.property(instant, fc.constantFrom(...periods), (now, period) => {
      const { id, resetAt } = bucketOf(period, now);
      assert.ok(resetAt !== null && resetAt > now);
      assert.doesNotMatch(id, /\s/);
      assert.equal(bucketOf(period, resetAt - 1).id, id);
      assert.notEqual(bucketOf(period, resetAt).id, id);
      if (period === 'week') assert.equal(id, oracleWeek(now));
    }),
    { numRuns: 2000 },
  );
});

const budget = (b: Partial<BudgetConfig> & Pick<BudgetConfig, 'name' | 'match' | 'period'>): BudgetConfig => ({ scale: 0, ...b });

const dailyUsd = budget({
  name: 'daily-usd',
  match: ['POST /v1/payments', 'payouts:POST /v1/payouts'],
  amount: 'body:amount',
  scale: 2,
  currency: { field: 'body:currency', equals: 'usd' },
  limit: 50_000,
  period: 'day',
});
const perMinute = budget({ name: 'writes-per-minute', match: ['POST /*'], count: 30, period: 'minute' });
const ledgerTotal = budget({
  name: 'ledger-total',
  match: ['ledger:* /v1/entries/*'],
  amount: 'body:units',
  limit: 1_000_000,
  period: 'total',
});
const bigPayment = budget({
  name: 'big-payment',
  match: ['POST /v1/payments'],
  amount: 'body:amount',
  scale: 2,
  limit: 10_000,
  period: 'write',
});
const all = [dailyUsd, perMinute, ledgerTotal, bigPayment];

const NOW = at('2026-12-07T13:05:00.000Z');
const write = (upstream: string, method: string, apiPath: string, json: string) => ({
  upstream,
  method,
  apiPath,
  json: parse(json),
  tool: null,
});

test('budgetsFor keeps the budgets with an entry for any upstream or for this one', () => {
  assert.deepEqual(
    budgetsFor(all, 'payments').map((b) => b.name),
    ['daily-usd', 'writes-per-minute', 'big-payment'],
  );
  assert.deepEqual(
    budgetsFor(all, 'payouts').map((b) => b.name),
    ['daily-usd', 'writes-per-minute', 'big-payment'],
  );
  assert.deepEqual(
    budgetsFor(all, 'ledger').map((b) => b.name),
    ['daily-usd', 'writes-per-minute', 'ledger-total', 'big-payment'],
  );
  assert.deepEqual(budgetsFor([ledgerTotal], 'payments'), []);
});

test('a matching write is charged on each budget it falls under, in the bucket of now', () => {
  const charges = chargesFor(all, write('payments', 'POST', '/v1/payments?expand=x', '{"amount":"24.50","currency":"usd"}'), NOW);
  assert.deepEqual(charges, [
    { bucket: 'daily-usd:d2026-12-07', amount: 2450, limit: 50_000, resetAt: at('2026-12-08T00:00:00.000Z') },
    { bucket: 'writes-per-minute:m2026-12-07T13:05', amount: 1, limit: 30, resetAt: at('2026-12-07T13:06:00.000Z') },
  ]);
  assert.equal(chargesFor(all, write('payments', 'POST', '/v1/payments', '{"amount":24.50,"currency":"usd"}'), NOW)[0]?.amount, 2450);
  assert.equal(chargesFor(all, write('payments', 'POST', '/v1/payments', '{"amount":24,"currency":"usd"}'), NOW)[0]?.amount, 2400);
});

test('an upstream prefix limits an entry to that upstream', () => {
  const payout = '{"amount":"1.00","currency":"usd"}';
  assert.deepEqual(
    chargesFor([dailyUsd], write('payouts', 'POST', '/v1/payouts', payout), NOW).map((c) => c.amount),
    [100],
  );
  assert.deepEqual(chargesFor([dailyUsd], write('payments', 'POST', '/v1/payouts', payout), NOW), []);
  const entry = write('ledger', 'PUT', '/v1/entries/e_1', '{"units":5}');
  assert.deepEqual(chargesFor(all, entry, NOW), [{ bucket: 'ledger-total:total', amount: 5, limit: 1_000_000, resetAt: null }]);
  assert.deepEqual(chargesFor(all, { ...entry, upstream: 'payments' }, NOW), []);
});

test('patterns match method and path; other writes are not charged', () => {
  assert.deepEqual(chargesFor(all, write('payments', 'GET', '/v1/payments', '{}'), NOW), []);
  assert.deepEqual(chargesFor(all, write('payments', 'PUT', '/v1/payments', '{}'), NOW), []);
  const refund = chargesFor(all, write('payments', 'POST', '/v1/refunds', '{}'), NOW);
  assert.deepEqual(
    refund.map((c) => c.bucket),
    ['writes-per-minute:m2026-12-07T13:05'],
  );
});

test('a currency filter counts only writes whose field is exactly that value', () => {
  const charged = (json: string): string[] =>
    chargesFor([dailyUsd], write('payments', 'POST', '/v1/payments', json), NOW).map((c) => c.bucket);
  assert.deepEqual(charged('{"amount":"1.00","currency":"usd"}'), ['daily-usd:d2026-12-07']);
  for (const other of ['"USD"', '"eur"', 'null', '["usd"]', '{"code":"usd"}']) {
    assert.deepEqual(charged(`{"amount":"1.00","currency":${other}}`), [], other);
  }
  assert.deepEqual(charged('{"amount":"1.00"}'), [], 'a write without the field is not counted');
  // A malformed amount in another currency is not this budget's business.
  assert.deepEqual(charged('{"amount":"abc","currency":"eur"}'), []);
  const numeric = budget({ ...dailyUsd, currency: { field: 'body:asset', equals: '840' } });
  assert.equal(chargesFor([numeric], write('payments', 'POST', '/v1/payments', '{"amount":1,"asset":840}'), NOW).length, 1);
  assert.equal(chargesFor([numeric], write('payments', 'POST', '/v1/payments', '{"amount":1,"asset":840.0}'), NOW).length, 0);
});

test('a count budget charges 1 whatever the body, JSON or not', () => {
  const charges = chargesFor([perMinute], { upstream: 'x', method: 'POST', apiPath: '/upload', json: undefined, tool: null }, NOW);
  assert.deepEqual(charges, [
    { bucket: 'writes-per-minute:m2026-12-07T13:05', amount: 1, limit: 30, resetAt: at('2026-12-07T13:06:00.000Z') },
  ]);
});

function refusal(fn: () => unknown): WriteguardError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WriteguardError, String(err));
    return err;
  }
  assert.fail('expected a refusal');
}

test('a malformed amount is refused 400 amount_invalid with a detail saying what to send', () => {
  const pay =
    (amount: string): (() => unknown) =>
    () =>
      chargesFor([dailyUsd], write('payments', 'POST', '/v1/payments?x=1', `{${amount}"currency":"usd"}`), NOW);
  const cases: Array<[string, RegExp]> = [
    ['"amount":"24.505",', /body:amount has 3 decimal places; at most 2 allowed/],
    ['"amount":-1,', /body:amount is negative/],
    ['', /body:amount is missing/],
    ['"amount":1e3,', /exponent notation/],
    ['"amount":123456789012345678901234567890,', /too large/],
    ['"amount":true,', /boolean/],
  ];
  for (const [amount, reason] of cases) {
    const err = refusal(pay(amount));
    assert.equal(err.code, 'amount_invalid', amount);
    assert.equal(err.status, 400);
    assert.match(err.message, /^this POST \/v1\/payments body:amount /, amount);
    assert.match(err.message, reason, amount);
    assert.match(
      err.message,
      /Nothing was sent: fix body:amount and send the write again \(budget daily-usd reads it with at most 2 decimal places\)/,
    );
  }
  const whole = budget({ ...dailyUsd, scale: 0, currency: undefined });
  assert.match(
    refusal(() => chargesFor([whole], write('p', 'POST', '/v1/payments', '{"amount":"1.5"}'), NOW)).message,
    /reads it as a whole number/,
  );
  const notJson = { upstream: 'payments', method: 'POST', apiPath: '/v1/payments', json: undefined, tool: null };
  assert.equal(refusal(() => chargesFor([budget({ ...dailyUsd, currency: undefined })], notJson, NOW)).code, 'amount_invalid');
});

test('a per-write cap charges nothing, and refuses a larger write there and then', () => {
  assert.deepEqual(chargesFor([bigPayment], write('payments', 'POST', '/v1/payments', '{"amount":"100.00"}'), NOW), []);
  const err = refusal(() => chargesFor([bigPayment], write('payments', 'POST', '/v1/payments', '{"amount":"100.01"}'), NOW));
  assert.equal(err.code, 'limit_exceeded');
  assert.equal(err.status, 403);
  assert.deepEqual(err.extensions, { budget: 'big-payment', limit: 10_000, left: 10_000, reset: null, amount: 10_001 });
  assert.equal(
    err.message,
    'this POST /v1/payments for 100.01 would exceed budget big-payment: at most 100.00 per write. Nothing was sent. ' +
      'Do not retry it: a smaller write may fit, or ask an operator to raise the limit.',
  );
});

test('limitExceeded words an amount refusal with what is left and when it resets', () => {
  const reset = at('2026-12-08T00:00:00.000Z');
  const err = limitExceeded({
    budget: 'daily-usd',
    limit: 1000,
    used: 300,
    amount: 701,
    resetAt: reset,
    method: 'POST',
    path: '/v1/payments',
  });
  assert.equal(err.code, 'limit_exceeded');
  assert.deepEqual(err.extensions, { budget: 'daily-usd', limit: 1000, left: 700, reset: '2026-12-08T00:00:00.000Z', amount: 701 });
  assert.equal(
    err.message,
    'this POST /v1/payments for 701 would exceed budget daily-usd: limit 1000, 700 left until 2026-12-08T00:00:00.000Z. ' +
      'Nothing was sent. Do not retry it: a smaller write may fit, or ask an operator to raise the limit.',
  );
  const over = limitExceeded({ budget: 'b', limit: 1000, used: 1200, amount: 1, resetAt: null, method: 'POST', path: '/x', scale: 2 });
  assert.equal(over.extensions.left, 0, 'never negative (a lowered limit)');
  assert.match(over.message, /for 0\.01 would exceed budget b: limit 10\.00, 0\.00 left \(it never resets\)/);
});

test('limitExceeded words a count refusal in writes', () => {
  const err = limitExceeded({
    budget: 'writes-per-minute',
    limit: 30,
    used: 30,
    amount: 1,
    resetAt: at('2026-12-07T13:06:00.000Z'),
    method: 'POST',
    path: '/v1/payments',
    count: true,
  });
  assert.equal(
    err.message,
    'this POST /v1/payments would exceed budget writes-per-minute: limit 30 writes, 0 writes left until 2026-12-07T13:06:00.000Z. ' +
      'Nothing was sent. Do not retry it before then: ask an operator to raise the limit if more writes are needed.',
  );
  assert.match(
    limitExceeded({ budget: 'one', limit: 1, used: 1, amount: 1, resetAt: null, method: 'POST', path: '/x', count: true }).message,
    /limit 1 write, 0 writes left \(it never resets\)/,
  );
});

test('limitRefused words a store refusal after the budget it names', () => {
  const resetAt = at('2026-12-08T00:00:00.000Z');
  const amountErr = limitRefused(
    all,
    { bucket: 'daily-usd:d2026-12-07', limit: 50_000, used: 49_000, amount: 2450, resetAt },
    'POST',
    '/v1/payments?a=1',
  );
  assert.match(amountErr.message, /^this POST \/v1\/payments for 24\.50 would exceed budget daily-usd: limit 500\.00, 10\.00 left until/);
  assert.equal(amountErr.extensions.left, 1000);
  const countErr = limitRefused(
    all,
    { bucket: 'writes-per-minute:m2026-12-07T13:05', limit: 30, used: 30, amount: 1, resetAt },
    'POST',
    '/v1/x',
  );
  assert.match(countErr.message, /limit 30 writes/);
  assert.equal(
    limitRefused([], { bucket: 'gone:total', limit: 5, used: 5, amount: 1, resetAt: null }, 'POST', '/x').extensions.budget,
    'gone',
  );
});

test('budgetNameOf is the part before the first colon', () => {
  assert.equal(budgetNameOf('daily-usd:d2026-12-07'), 'daily-usd');
  assert.equal(budgetNameOf('writes-per-minute:m2026-12-07T13:05'), 'writes-per-minute');
  assert.equal(budgetNameOf('ledger-total:total'), 'ledger-total');
});
