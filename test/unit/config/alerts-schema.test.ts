// The `alerts` section: its defaults, what it refuses, and the secret from WRITEGUARD_ALERTS_SECRET.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ALERT_TYPES } from '../../../src/config/alerts-schema.js';
import { ConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';

const upstreams = [{ name: 'payments', target: 'https://api.example.com' }];
const secret = 'a-secret-of-32-characters-------';

function problemsOf(raw: unknown): readonly string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  return assert.fail('expected the config to be refused');
}

test('alerts are off by default', () => {
  assert.deepEqual(parseConfig({ upstreams }).alerts, { webhook: null });
  assert.deepEqual(parseConfig({ upstreams, alerts: {} }).alerts, { webhook: null });
  assert.deepEqual(parseConfig({ upstreams, alerts: { webhook: null } }).alerts, { webhook: null });
});

test('a webhook needs a url and a secret; the rest has defaults', () => {
  const config = parseConfig({ upstreams, alerts: { webhook: { url: 'https://alerts.example.com/hook', secret } } });
  assert.deepEqual(config.alerts.webhook, {
    url: 'https://alerts.example.com/hook',
    secret,
    events: [...ALERT_TYPES],
    queueSize: 1000,
    maxAttempts: 8,
    timeoutMs: 5000,
  });
  assert.deepEqual(ALERT_TYPES, ['limit_exceeded', 'approval_required', 'agent_paused', 'outcome_unknown']);
});

test('a bad webhook is refused field by field', () => {
  const problems = problemsOf({
    upstreams,
    alerts: {
      webhook: { url: 'ftp://alerts.example.com', secret: 'short', events: ['limit_exceeded', 'nope'], queueSize: 0, maxAttempts: 1.5 },
    },
  });
  const paths = problems.map((p) => p.split(':')[0]);
  assert.deepEqual(paths.sort(), [
    'alerts.webhook.events[1]',
    'alerts.webhook.maxAttempts',
    'alerts.webhook.queueSize',
    'alerts.webhook.secret',
    'alerts.webhook.url',
  ]);
  assert.ok(
    problemsOf({ upstreams, alerts: { webhook: { url: 'https://a.example.com' } } }).some((p) => p.startsWith('alerts.webhook.secret')),
  );
  assert.ok(problemsOf({ upstreams, alerts: { webhook: null, extra: 1 } }).some((p) => p.startsWith('alerts')));
});

test('WRITEGUARD_ALERTS_SECRET supplies (and overrides) the secret of a webhook the file configures', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wg-alerts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'writeguard.yaml');
  writeFileSync(file, stringify({ upstreams, alerts: { webhook: { url: 'https://alerts.example.com/hook' } } }));
  assert.throws(() => loadConfig({ file, env: {} }), /alerts\.webhook\.secret/);
  assert.equal(loadConfig({ file, env: { WRITEGUARD_ALERTS_SECRET: secret } }).alerts.webhook?.secret, secret);

  writeFileSync(
    file,
    stringify({ upstreams, alerts: { webhook: { url: 'https://alerts.example.com/hook', secret: 'in-the-file-16-chars' } } }),
  );
  assert.equal(loadConfig({ file, env: { WRITEGUARD_ALERTS_SECRET: secret } }).alerts.webhook?.secret, secret);

  // Without a webhook in the file, the variable turns nothing on.
  writeFileSync(file, stringify({ upstreams }));
  assert.deepEqual(loadConfig({ file, env: { WRITEGUARD_ALERTS_SECRET: secret } }).alerts, { webhook: null });
});
