// The config: defaults, `--upstream`, environment overrides, every problem listed by path, the JSON Schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../../src/config/load.js';
import { configJsonSchema } from '../../../src/config/json-schema.js';
import { drainDeadlineMs } from '../../../src/config/schema.js';

/** The problems a config raises, or fails the test when it raises none. */
function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'config_invalid');
    for (const p of err.problems) assert.ok(err.message.includes(p), 'the message lists every problem');
    return err.problems;
  }
  assert.fail('expected the config to be refused');
}

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'wg-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('parseConfig fills in every default', () => {
  const config = parseConfig({ upstreams: [{ name: 'payments', target: 'https://api.example.com' }] });
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8787 });
  assert.equal(config.admin.host, '127.0.0.1');
  assert.equal(config.admin.port, 8788);
  assert.equal(config.admin.token, null);
  assert.equal(config.store.kind, 'memory');
  assert.equal(config.store.keyPrefix, 'wg:');
  assert.equal(config.namespace, 'live');
  assert.equal(config.identity.agentId, 'default');
  assert.equal(config.identity.agentIdHeader, null);
  assert.equal(config.logLevel, 'info');
  assert.equal(config.limits.maxHeaderCount, 200);
  assert.ok(config.limits.headersTimeoutMs <= config.limits.requestTimeoutMs);
  assert.equal(config.upstreams.length, 1);
  const u = config.upstreams[0]!;
  assert.equal(u.name, 'payments');
  assert.equal(u.target, 'https://api.example.com');
  assert.equal(u.prefix, undefined);
  assert.equal(u.listen, undefined);
  assert.equal(u.timeoutMs, 30_000);
  assert.deepEqual(u.tls, { rejectUnauthorized: true, ca: null });
  assert.deepEqual(u.requestIdHeaders, ['request-id', 'x-request-id']);
  assert.deepEqual(u.requestIdFields, ['request_id', 'error.request_id']);
  assert.deepEqual(u.codeFields, ['code', 'error.code', 'error.type']);
  assert.equal(u.allow, null);
  assert.deepEqual(u.idempotency.methods, ['POST', 'PUT', 'PATCH', 'DELETE']);
  assert.equal(u.idempotency.maxBodyBytes, 1_048_576);
});

test('header names in the config are lower-cased', () => {
  const config = parseConfig({ upstreams: [{ name: 'a', target: 'http://127.0.0.1:1', requestIdHeaders: ['X-Trace-Id'] }] });
  assert.deepEqual(config.upstreams[0]!.requestIdHeaders, ['x-trace-id']);
});

test('loadConfig with `upstream` builds one upstream on the memory store', () => {
  const config = loadConfig({ upstream: 'http://127.0.0.1:9/api', env: {} });
  assert.equal(config.upstreams.length, 1);
  assert.equal(config.upstreams[0]!.name, 'default');
  assert.equal(config.upstreams[0]!.target, 'http://127.0.0.1:9/api');
  assert.equal(config.upstreams[0]!.prefix, undefined);
  assert.equal(config.store.kind, 'memory');
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8787 });
});

test('loadConfig with neither a file nor an upstream refuses to start', () => {
  assert.deepEqual(
    problemsOf(() => loadConfig({ env: {} })),
    ['upstreams: at least one upstream is needed'],
  );
});

test('loadConfig refuses a file and `upstream` together', (t) => {
  const file = join(tempDir(t), 'wg.yaml');
  writeFileSync(file, 'upstreams:\n  - name: a\n    target: http://127.0.0.1:1\n');
  assert.deepEqual(
    problemsOf(() => loadConfig({ file, upstream: 'http://127.0.0.1:2', env: {} })),
    ['use a config file or --upstream, not both'],
  );
});

test('the drain deadline: drainMs when set, else the longest upstream timeoutMs + 5 s', () => {
  const two = {
    upstreams: [
      { name: 'a', prefix: '/a', target: 'http://127.0.0.1:1', timeoutMs: 12_000 },
      { name: 'b', prefix: '/b', target: 'http://127.0.0.1:2' },
    ],
  };
  assert.equal(drainDeadlineMs(parseConfig(two)), 35_000, 'the default timeoutMs (30 s) is the longest');
  assert.equal(drainDeadlineMs(parseConfig({ ...two, drainMs: 20_000 })), 20_000);
  assert.match(problemsOf(() => parseConfig({ ...two, drainMs: 0 }))[0]!, /^drainMs: /);
});

test('environment overrides apply to `--upstream`', () => {
  const config = loadConfig({
    upstream: 'http://127.0.0.1:9',
    env: {
      WRITEGUARD_PORT: '9100',
      WRITEGUARD_HOST: '127.0.0.2',
      WRITEGUARD_ADMIN_PORT: '9101',
      WRITEGUARD_ADMIN_HOST: '0.0.0.0',
      WRITEGUARD_DRAIN_MS: '8000',
      REDIS_URL: 'redis://127.0.0.1:6390/2',
      WRITEGUARD_NAMESPACE: 'test',
      WRITEGUARD_AGENT_ID: 'agent-7',
      WRITEGUARD_ADMIN_TOKEN: 'a-token-of-sixteen-chars',
      LOG_LEVEL: 'debug',
    },
  });
  assert.deepEqual(config.listen, { host: '127.0.0.2', port: 9100 });
  assert.equal(config.admin.port, 9101);
  assert.equal(config.admin.host, '0.0.0.0');
  assert.equal(config.drainMs, 8000);
  assert.equal(drainDeadlineMs(config), 8000);
  assert.equal(config.admin.token, 'a-token-of-sixteen-chars');
  assert.equal(config.store.kind, 'redis');
  assert.equal(config.store.url, 'redis://127.0.0.1:6390/2');
  assert.equal(config.namespace, 'test');
  assert.equal(config.identity.agentId, 'agent-7');
  assert.equal(config.logLevel, 'debug');
});

test('environment overrides win over the file, which keeps the rest', (t) => {
  const file = join(tempDir(t), 'wg.yaml');
  writeFileSync(
    file,
    [
      'listen: { host: 127.0.0.1, port: 8000 }',
      'store: { kind: memory, keyPrefix: "x:" }',
      'namespace: live',
      'identity: { agentId: from-file }',
      'upstreams:',
      '  - name: pay',
      '    prefix: /pay',
      '    target: http://127.0.0.1:1',
      '',
    ].join('\n'),
  );
  const config = loadConfig({
    env: { WRITEGUARD_CONFIG: file, WRITEGUARD_PORT: '0', REDIS_URL: 'redis://127.0.0.1:6391', WRITEGUARD_AGENT_ID: 'from-env' },
  });
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 0 });
  assert.equal(config.store.kind, 'redis');
  assert.equal(config.store.url, 'redis://127.0.0.1:6391');
  assert.equal(config.store.keyPrefix, 'x:', 'the rest of the store section is kept');
  assert.equal(config.identity.agentId, 'from-env');
  assert.equal(config.upstreams[0]!.prefix, '/pay');
});

test('a bad environment value is a config problem by path', () => {
  const problems = problemsOf(() =>
    loadConfig({
      upstream: 'http://127.0.0.1:9',
      env: { WRITEGUARD_PORT: 'eighty', LOG_LEVEL: 'loud', WRITEGUARD_NAMESPACE: 'Not Valid' },
    }),
  );
  assert.equal(problems.length, 3, problems.join('\n'));
  assert.ok(
    problems.some((p) => p.startsWith('listen.port: ')),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => p.startsWith('logLevel: ')),
    problems.join('\n'),
  );
  assert.ok(problems.includes('namespace: must be 1-32 of a-z, 0-9, - or _'), problems.join('\n'));
});

test('a bad config lists every problem by path', () => {
  const problems = problemsOf(() =>
    parseConfig({
      listen: { port: 70_000 },
      upstreams: [
        { name: 'Bad Name', target: 'ftp://api.example.com', timeoutMs: 0 },
        { name: 'b', target: 'not a url', prefix: '/b' },
        { name: 'c', target: 'http://127.0.0.1:1', prefix: '/c', allow: ['post /x'] },
      ],
    }),
  );
  assert.ok(problems.includes('upstreams[0].target: must be an http(s) URL'), problems.join('\n'));
  assert.ok(problems.includes('upstreams[1].target: must be an http(s) URL'), problems.join('\n'));
  assert.ok(problems.includes('upstreams[0].name: must be lower-case letters, digits, - or _'), problems.join('\n'));
  assert.ok(problems.includes('upstreams[2].allow[0]: must look like "POST /v1/payments", "GET /v1/*" or "POST *"'), problems.join('\n'));
  assert.ok(
    problems.some((p) => p.startsWith('upstreams[0].timeoutMs: ')),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => p.startsWith('listen.port: ')),
    problems.join('\n'),
  );
  assert.equal(problems.length, 6, problems.join('\n'));
});

test('unknown keys are problems, by path', () => {
  const problems = problemsOf(() => parseConfig({ lisen: {}, upstreams: [{ name: 'a', target: 'http://127.0.0.1:1', timeout: 5 }] }));
  assert.equal(problems.length, 2, problems.join('\n'));
  assert.ok(
    problems.some((p) => p.startsWith('(root): ') && p.includes('lisen')),
    problems.join('\n'),
  );
  assert.ok(
    problems.some((p) => p.startsWith('upstreams[0]: ') && p.includes('timeout')),
    problems.join('\n'),
  );
});

test('duplicate prefixes (an upstream without one takes "/") and names are refused', () => {
  assert.deepEqual(
    problemsOf(() =>
      parseConfig({
        upstreams: [
          { name: 'a', target: 'http://127.0.0.1:1', prefix: '/pay' },
          { name: 'b', target: 'http://127.0.0.1:2', prefix: '/pay' },
          { name: 'c', target: 'http://127.0.0.1:3' },
          { name: 'c', target: 'http://127.0.0.1:4', prefix: '/' },
        ],
      }),
    ),
    [
      'upstreams[1].prefix: duplicate prefix "/pay"',
      'upstreams[3].name: duplicate upstream name "c"',
      'upstreams[3].prefix: duplicate prefix "/"',
    ],
  );
});

test('prefix and listen together are refused', () => {
  assert.deepEqual(
    problemsOf(() => parseConfig({ upstreams: [{ name: 'a', target: 'http://127.0.0.1:1', prefix: '/a', listen: { port: 9000 } }] })),
    ['upstreams[0].listen: use either prefix or listen, not both'],
  );
});

test("prefix and listen together do not hide the other upstreams' problems", () => {
  // Every problem is listed, not only the first one found.
  const problems = problemsOf(() =>
    parseConfig({
      upstreams: [
        { name: 'a', target: 'http://127.0.0.1:1', prefix: '/pay' },
        { name: 'b', target: 'http://127.0.0.1:2', prefix: '/pay' },
        { name: 'c', target: 'http://127.0.0.1:3', prefix: '/c', listen: { port: 9000 } },
      ],
    }),
  );
  assert.deepEqual([...problems].sort(), [
    'upstreams[1].prefix: duplicate prefix "/pay"',
    'upstreams[2].listen: use either prefix or listen, not both',
  ]);
});

test('a listen port already used by the main or admin listener is refused', () => {
  assert.deepEqual(
    problemsOf(() => parseConfig({ upstreams: [{ name: 'a', target: 'http://127.0.0.1:1', listen: { port: 8788 } }] })),
    ['upstreams[0].listen.port: port 8788 is already used'],
  );
});

test('headersTimeoutMs may not exceed requestTimeoutMs', () => {
  assert.deepEqual(
    problemsOf(() =>
      parseConfig({ limits: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 }, upstreams: [{ name: 'a', target: 'http://127.0.0.1:1' }] }),
    ),
    ['limits.headersTimeoutMs: must not exceed limits.requestTimeoutMs'],
  );
});

test('YAML file errors: missing file, invalid YAML, not a mapping, bad content', (t) => {
  const dir = tempDir(t);
  const missing = join(dir, 'missing.yaml');
  assert.deepEqual(
    problemsOf(() => loadConfig({ file: missing, env: {} })),
    [`${missing}: cannot be read (ENOENT)`],
  );

  const broken = join(dir, 'broken.yaml');
  writeFileSync(broken, 'upstreams: [\n  - name: a\n');
  const brokenProblems = problemsOf(() => loadConfig({ file: broken, env: {} }));
  assert.equal(brokenProblems.length, 1);
  assert.ok(brokenProblems[0]!.startsWith(`${broken}: not valid YAML: `), brokenProblems[0]);

  const list = join(dir, 'list.yaml');
  writeFileSync(list, '- a\n- b\n');
  assert.deepEqual(
    problemsOf(() => loadConfig({ file: list, env: {} })),
    [`${list}: must be a YAML mapping`],
  );

  const empty = join(dir, 'empty.yaml');
  writeFileSync(empty, '');
  assert.deepEqual(
    problemsOf(() => loadConfig({ file: empty, env: {} })),
    [`${empty}: must be a YAML mapping`],
  );

  const bad = join(dir, 'bad.yaml');
  writeFileSync(
    bad,
    'upstreams:\n  - name: a\n    target: ftp://x\n  - name: b\n    target: http://127.0.0.1:1\n    prefix: /b\n    listen: { port: 9000 }\n',
  );
  assert.deepEqual([...problemsOf(() => loadConfig({ file: bad, env: {} }))].sort(), [
    'upstreams[0].target: must be an http(s) URL',
    'upstreams[1].listen: use either prefix or listen, not both',
  ]);
});

test('a good YAML file loads', (t) => {
  const file = join(tempDir(t), 'good.yaml');
  writeFileSync(
    file,
    [
      '# yaml-language-server: $schema=./writeguard.schema.json',
      'listen: { host: 127.0.0.1, port: 8787 }',
      'upstreams:',
      '  - name: payments',
      '    prefix: /pay',
      '    target: https://api.example.com/api',
      '    timeoutMs: 5000',
      '    allow: ["POST /v1/payments", "GET /v1/*"]',
      '    idempotency: { maxBodyBytes: 2048 }',
      '  - name: ledger',
      '    listen: { port: 8790 }',
      '    target: http://127.0.0.1:9000',
      '',
    ].join('\n'),
  );
  const config = loadConfig({ file, env: {} });
  assert.equal(config.upstreams.length, 2);
  assert.equal(config.upstreams[0]!.prefix, '/pay');
  assert.deepEqual(config.upstreams[0]!.allow, ['POST /v1/payments', 'GET /v1/*']);
  assert.equal(config.upstreams[0]!.idempotency.maxBodyBytes, 2048);
  assert.deepEqual(config.upstreams[1]!.listen, { host: '127.0.0.1', port: 8790 });
});

test('configJsonSchema() is draft-07 and describes the whole config', () => {
  const schema = configJsonSchema() as {
    $schema: string;
    type: string;
    properties: Record<string, { type?: string }>;
    required?: string[];
    additionalProperties?: unknown;
  };
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.equal(schema.type, 'object');
  assert.ok('upstreams' in schema.properties);
  assert.equal(schema.properties.upstreams!.type, 'array');
  for (const key of ['listen', 'admin', 'store', 'namespace', 'identity', 'limits', 'logLevel']) assert.ok(key in schema.properties, key);
  // io: 'input': only what must be written is required (defaults make the rest optional).
  assert.deepEqual(schema.required, ['upstreams']);
  assert.equal(schema.additionalProperties, false);
  assert.doesNotThrow(() => JSON.stringify(schema));
});
