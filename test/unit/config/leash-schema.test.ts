// The leash's config (DESIGN §10.1–10.2): intent on upstreams and routes, top-level budgets, and the
// cross-field checks that refuse a budget or intent that could never do what it says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseConfig } from '../../../src/config/load.js';
import type { ConfigInput } from '../../../src/config/schema.js';

type BudgetInput = NonNullable<ConfigInput['budgets']>[number];
type UpstreamInput = ConfigInput['upstreams'][number];

const payments: UpstreamInput = {
  name: 'payments',
  target: 'https://api.example.com',
  routes: [{ match: 'POST /v1/quotes', mode: 'passthrough' }],
};
const payouts: UpstreamInput = {
  name: 'payouts',
  prefix: '/payouts',
  target: 'https://payouts.example.com',
  idempotency: { methods: ['PUT'] },
};

const config = (budgets: BudgetInput[], upstreams: UpstreamInput[] = [payments, payouts]): ConfigInput => ({ upstreams, budgets });

/** Every `path: message` problem the config raises; [] when it is valid. */
function problems(input: ConfigInput): readonly string[] {
  try {
    parseConfig(input);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
}

function refusedAt(input: ConfigInput, path: string, message: RegExp): void {
  const found = problems(input);
  assert.ok(
    found.some((p) => p.startsWith(`${path}: `) && message.test(p)),
    `expected ${path}: ${String(message)}, got ${JSON.stringify(found)}`,
  );
}

const spend: BudgetInput = { name: 'daily-usd', match: 'POST /v1/payments', amount: 'body:amount', limit: 50_000, period: 'day' };
const writes: BudgetInput = { name: 'writes-per-minute', match: ['POST /*', 'payouts:PUT /v1/*'], count: 30, period: 'minute' };

test('valid budgets pass, get their defaults, and a single match string becomes a list', () => {
  const parsed = parseConfig(config([spend, writes, { ...spend, name: 'per-write', scale: 2, period: 'write' }]));
  assert.deepEqual(parsed.budgets[0], { ...spend, match: ['POST /v1/payments'], scale: 0 });
  assert.deepEqual(parsed.budgets[1]?.match, ['POST /*', 'payouts:PUT /v1/*']);
  assert.equal(parsed.budgets[2]?.scale, 2);
  assert.deepEqual(parseConfig({ upstreams: [payments] }).budgets, []);
  const currency = { ...spend, currency: { field: 'body:currency', equals: 'usd' } };
  assert.deepEqual(parseConfig(config([currency])).budgets[0]?.currency, { field: 'body:currency', equals: 'usd' });
});

test('budget names are unique', () => {
  refusedAt(config([spend, { ...writes, name: 'daily-usd' }]), 'budgets[1].name', /duplicate budget name "daily-usd"/);
});

test('a budget is a count, or an amount with a limit, and nothing in between', () => {
  const { limit: _limit, ...noLimit } = spend;
  refusedAt(config([noLimit]), 'budgets[0].limit', /amount budget needs a limit/);
  refusedAt(config([{ name: 'b', match: 'POST /v1/payments', limit: 10, period: 'day' }]), 'budgets[0].amount', /limit needs amount/);
  refusedAt(config([{ ...writes, amount: 'body:amount' }]), 'budgets[0].count', /either count .* or amount with limit/);
  refusedAt(config([{ ...writes, limit: 10 }]), 'budgets[0].limit', /count budget has no limit/);
  refusedAt(config([{ name: 'b', match: 'POST /v1/payments', period: 'day' }]), 'budgets[0].count', /needs count .* or amount with limit/);
});

test('currency filters an amount; period write caps an amount', () => {
  refusedAt(config([{ ...writes, currency: { field: 'body:currency', equals: 'usd' } }]), 'budgets[0].currency', /needs amount/);
  refusedAt(config([{ ...writes, period: 'write' }]), 'budgets[0].period', /per-write cap .* needs amount and limit/);
});

test('field shapes: names, match entries, scale, limits, periods', () => {
  refusedAt(config([{ ...spend, name: 'Daily USD' }]), 'budgets[0].name', /lower-case/);
  refusedAt(config([{ ...spend, match: 'POST v1/payments' }]), 'budgets[0].match', /must look like/);
  assert.deepEqual(parseConfig(config([{ ...spend, match: 'POST *' }])).budgets[0]?.match, ['POST *'], 'POST *: any path');
  refusedAt(config([{ ...spend, match: [] }]), 'budgets[0].match', /./);
  refusedAt(config([{ ...spend, amount: 'amount' }]), 'budgets[0].amount', /body:<field>/);
  refusedAt(config([{ ...spend, scale: 19 }]), 'budgets[0].scale', /./);
  refusedAt(config([{ ...spend, limit: 2 ** 53 }]), 'budgets[0].limit', /./);
  refusedAt(config([{ ...spend, limit: 1.5 }]), 'budgets[0].limit', /./);
  refusedAt(config([{ ...writes, count: 0 }]), 'budgets[0].count', /./);
  refusedAt(config([{ ...spend, period: 'year' as never }]), 'budgets[0].period', /./);
  refusedAt(config([{ ...spend, extra: 1 } as BudgetInput]), 'budgets[0]', /extra/);
});

test("a match entry's upstream prefix names a configured upstream", () => {
  refusedAt(
    config([{ ...spend, match: ['POST /v1/payments', 'payoutz:PUT /v1/x'] }]),
    'budgets[0].match[1]',
    /"payoutz" is not a configured upstream \(payments, payouts\)/,
  );
});

test('a match entry names a protected write on an upstream it applies to', () => {
  // payouts only treats PUT as a write; payments the defaults.
  refusedAt(config([{ ...spend, match: 'payouts:POST /v1/x' }]), 'budgets[0].match[0]', /POST is not a write on upstream payouts/);
  refusedAt(config([{ ...spend, match: 'GET /v1/payments' }]), 'budgets[0].match[0]', /GET is not a write on any upstream/);
  assert.deepEqual(problems(config([{ ...spend, match: ['payouts:PUT /v1/x', 'payouts:* /v1/*', 'PUT /v1/y'] }])), []);
  // A route's own methods make it a write there.
  const routed: UpstreamInput = { ...payouts, routes: [{ match: 'POST /v1/batch', idempotency: { methods: ['POST'] } }] };
  assert.deepEqual(problems(config([{ ...spend, match: 'payouts:POST /v1/batch' }], [payments, routed])), []);
});

test('a passthrough route cannot be budgeted', () => {
  refusedAt(config([{ ...spend, match: 'payments:POST /v1/quotes' }]), 'budgets[0].match[0]', /passthrough route on upstream payments/);
  // payouts does not treat POST as a write, so payments is the only upstream the entry could count on.
  refusedAt(
    config([{ ...spend, match: 'POST /v1/quotes' }]),
    'budgets[0].match[0]',
    /passthrough route on every upstream where POST is a write/,
  );
  // Unprefixed, it still counts the writes of an upstream where the route is protected.
  const ledger: UpstreamInput = { name: 'ledger', prefix: '/ledger', target: 'https://ledger.example.com' };
  assert.deepEqual(problems(config([{ ...spend, match: 'POST /v1/quotes' }], [payments, ledger])), []);
});

test('budgets are checked only once they and the upstreams parse (no cascade of follow-on problems)', () => {
  const found = problems(
    config([
      { ...spend, match: 'POST *' },
      { ...spend, name: 'daily-usd' },
    ]),
  );
  assert.equal(found.length, 1, JSON.stringify(found));
});

test('intent on an upstream and on a route, with defaults', () => {
  const intent = { fields: ['body:amount', 'body:destination'] };
  const parsed = parseConfig({
    upstreams: [{ ...payments, intent, routes: [{ match: 'POST /v1/transfers/*', intent: { fields: ['body:to'], keyed: 'off' } }] }],
  });
  const u = parsed.upstreams[0]!;
  assert.deepEqual(u.intent, { fields: ['body:amount', 'body:destination'], windowSec: 600, keyed: 'guard' });
  assert.deepEqual(u.routes[0]?.intent, { fields: ['body:to'], windowSec: 600, keyed: 'off' });
  assert.equal(parseConfig({ upstreams: [payments] }).upstreams[0]?.intent, null);
  assert.equal(parseConfig({ upstreams: [payments] }).upstreams[0]?.routes[0]?.intent, null);
});

test('intent fields: at least one body field; a positive whole window; guard or off', () => {
  const withIntent = (intent: unknown): ConfigInput => ({ upstreams: [{ ...payments, intent: intent as never }] });
  refusedAt(withIntent({ fields: [] }), 'upstreams[0].intent.fields', /./);
  refusedAt(withIntent({ fields: ['amount'] }), 'upstreams[0].intent.fields[0]', /body:<field>/);
  refusedAt(withIntent({ fields: ['body:amount'], windowSec: 0 }), 'upstreams[0].intent.windowSec', /./);
  refusedAt(withIntent({ fields: ['body:amount'], keyed: 'yes' }), 'upstreams[0].intent.keyed', /./);
});

test('an intent on a passthrough route is refused', () => {
  const upstream: UpstreamInput = {
    ...payments,
    routes: [{ match: 'POST /v1/quotes', mode: 'passthrough', intent: { fields: ['body:q'] } }],
  };
  refusedAt({ upstreams: [upstream] }, 'upstreams[0].routes[0].intent', /passthrough route is never claimed/);
});
