// Every example in config/ loads through the real loader, points editors at the schema, and says what
// its comments promise: the settings each API style needs.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import type { Config, UpstreamConfig } from '../../src/config/schema.js';
import { routePolicy } from '../../src/proxy/route.js';

const dir = new URL('../../config/', import.meta.url);
const load = (name: string): Config => loadConfig({ file: fileURLToPath(new URL(name, dir)), env: {} });
const only = (config: Config): UpstreamConfig => {
  assert.equal(config.upstreams.length, 1);
  return config.upstreams[0]!;
};

const checks: Record<string, (config: Config) => void> = {
  'writeguard.example.yaml': (config) => {
    assert.equal(only(config).name, 'payments');
  },

  'agent-payments.yaml': (config) => {
    const u = only(config);
    assert.equal(config.store.kind, 'redis');
    // The README's worked example: a daily cap and a recipient allow-list, intents on the payee and amount.
    assert.deepEqual(
      config.budgets.map((b) => [b.name, b.period]),
      [
        ['daily-usd', 'day'],
        ['payments-per-minute', 'minute'],
      ],
    );
    assert.ok(u.policy.some((rule) => rule.code === 'recipient_not_allowed'));
    assert.deepEqual(u.intent?.fields, ['body:amount', 'body:currency', 'body:destination']);
    assert.equal(u.idempotency.forwardKey, true);
    assert.equal(u.idempotency.upstreamHonorsKey, true);
    // 503 stays ambiguous (a load balancer answers 503 after the backend ran); the comment says why.
    assert.deepEqual(u.idempotency.notExecutedStatuses, [429]);
    assert.equal(u.idempotency.onConcurrent, 'wait');
    assert.equal(u.retry.maxAttempts, 3);
    assert.ok(u.timeoutMs + u.retry.maxElapsedMs <= 40_000);
    assert.ok(u.allow?.includes('POST /v1/payments'));
    assert.equal(routePolicy(u, 'POST', '/v1/quotes').mode, 'passthrough');
    assert.equal(routePolicy(u, 'POST', '/v1/payments').mode, 'protect');
  },

  'compose.yaml': (config) => {
    // docker-compose.yml's writeguard: the example upstream's service name; the store comes from REDIS_URL there.
    assert.equal(only(config).target, 'http://upstream:9000');
    assert.equal(config.store.kind, 'memory', 'the file names no store: compose sets REDIS_URL (deploy-compose.test.ts)');
  },

  'mcp-payments.yaml': (config) => {
    const u = only(config);
    assert.equal(u.prefix, '/mcp');
    assert.deepEqual(Object.keys(u.mcp?.tools ?? {}).sort(), ['create_payment', 'refund_payment']);
    // arguments.x is read from the JSON-RPC params.
    assert.equal(u.mcp?.tools['create_payment']?.key, 'body:params.arguments.idempotency_key');
    assert.equal(config.budgets[0]?.amount, 'body:params.arguments.amount');
    assert.deepEqual(config.budgets[0]?.match, ['pay-mcp:TOOL create_payment']);
    assert.ok(u.policy.every((rule) => rule.match.includes('TOOL create_payment')));
  },

  'loyalty-points.yaml': (config) => {
    const u = only(config);
    assert.equal(u.prefix, '/points');
    for (const path of ['/v1/purchases', '/v1/redemptions']) {
      const policy = routePolicy(u, 'POST', path);
      assert.equal(policy.mode, 'protect', path);
      assert.equal(policy.idempotency.missing, 'reject', path);
      // The key is what the API stores, so the reconcile probe can look it up (404 = it did not run).
      assert.deepEqual(policy.idempotency.keyFrom, ['body:partnerReference'], path);
      const probe = u.routes.find((r) => r.match === `POST ${path}`)?.reconcile;
      assert.equal(probe?.method, 'GET', path);
      assert.match(probe?.path ?? '', /\{key\}/, path);
      assert.deepEqual(probe?.notFoundStatuses, [404], path);
    }
    assert.equal(routePolicy(u, 'POST', '/v1/quotes').mode, 'passthrough');
    assert.deepEqual(u.allow, ['GET /v1/members/*', 'POST /v1/quotes', 'POST /v1/purchases', 'POST /v1/redemptions']);
    assert.equal(u.idempotency.upstreamHonorsKey, false);
    // The rotating credential is never part of a request's identity.
    assert.ok(!u.idempotency.fingerprintHeaders.includes('x-agent-key'));
  },

  'ledger.yaml': (config) => {
    const u = only(config);
    assert.deepEqual(u.idempotency.keyFrom, ['header', 'body:referenceId']);
    assert.equal(u.idempotency.fingerprint, 'canonical-json');
    assert.equal(u.idempotency.missing, 'reject');
    assert.equal(u.idempotency.upstreamHonorsKey, false);
    assert.equal(routePolicy(u, 'POST', '/v1/balances/query').mode, 'passthrough');
  },

  'openai-compatible.yaml': (config) => {
    const u = only(config);
    assert.equal(u.prefix, '/');
    for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/responses']) {
      assert.equal(routePolicy(u, 'POST', path).mode, 'passthrough', path);
    }
    for (const path of ['/v1/files', '/v1/batches']) {
      const policy = routePolicy(u, 'POST', path);
      assert.equal(policy.mode, 'protect', path);
      assert.equal(policy.idempotency.missing, 'derive', path);
    }
    assert.ok(routePolicy(u, 'POST', '/v1/files').idempotency.maxBodyBytes >= 100 * 1024 * 1024);
    assert.ok(u.timeoutMs >= 600_000, 'no shorter than the SDK timeout');
  },

  'stripe.yaml': (config) => {
    const u = only(config);
    assert.equal(u.prefix, undefined);
    assert.deepEqual(u.listen, { host: '127.0.0.1', port: 8790 });
    assert.equal(u.idempotency.upstreamHonorsKey, true);
    assert.deepEqual(u.idempotency.fingerprintHeaders, ['stripe-account', 'stripe-context']);
    assert.ok(u.timeoutMs + u.retry.maxElapsedMs < 80_000, "below stripe-node's own timeout");
  },
};

const files = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

test('every example config has checks here (a new example needs its own)', () => {
  assert.deepEqual(files, Object.keys(checks).sort());
});

for (const file of files) {
  test(`config/${file} loads, points at the schema, and has the settings it documents`, () => {
    const text = readFileSync(new URL(file, dir), 'utf8');
    assert.equal(text.split('\n')[0], '# yaml-language-server: $schema=./writeguard.schema.json');
    const config = load(file);
    checks[file]?.(config);
  });
}
