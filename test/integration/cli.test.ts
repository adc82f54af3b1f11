// The real command, as a process: exit codes, check-config, schema, start, health, SIGTERM.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream } from '../helpers/upstream.js';
import { until } from '../helpers/wait.js';
import { CLI, launchWriteguard, type WriteguardProcess } from '../helpers/writeguard.js';

const dir = mkdtempSync(join(tmpdir(), 'wg-cli-'));
const running: WriteguardProcess[] = [];
after(async () => {
  for (const p of running) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.kill('SIGKILL');
    await p.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 10_000,
  });
  assert.equal(result.error, undefined);
  return result;
}

test('--version prints the package version and exits 0', () => {
  const result = run(['--version']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(
    result.stdout.trim(),
    (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version,
  );
});

test('check-config of a bad file prints every problem by path and exits 2', () => {
  const file = join(dir, 'bad.yaml');
  writeFileSync(
    file,
    [
      'listen: { port: 70000 }',
      'upstreams:',
      '  - name: Payments',
      '    target: ftp://api.example.com',
      '  - name: b',
      '    target: http://127.0.0.1:1',
      '    allow: ["post /x"]',
      '',
    ].join('\n'),
  );
  const result = run(['check-config', file]);
  assert.equal(result.status, 2, result.stderr);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /invalid configuration/);
  assert.match(result.stderr, /^ {2}upstreams\[0\]\.target: must be an http\(s\) URL$/m);
  assert.match(result.stderr, /^ {2}upstreams\[0\]\.name: must be lower-case letters, digits, - or _$/m);
  assert.match(result.stderr, /^ {2}upstreams\[1\]\.allow\[0\]: must look like "POST \/v1\/payments", "GET \/v1\/\*" or "POST \*"$/m);
  assert.match(result.stderr, /^ {2}listen\.port: /m);
  assert.match(result.stderr, /^ {2}upstreams\[1\]\.prefix: duplicate prefix "\/"$/m);
});

test('check-config of an unreadable or non-YAML file exits 2', () => {
  const missing = run(['check-config', join(dir, 'missing.yaml')]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /missing\.yaml: cannot be read \(ENOENT\)/);
  const broken = join(dir, 'broken.yaml');
  writeFileSync(broken, 'upstreams: [\n');
  const result = run(['check-config', broken]);
  assert.equal(result.status, 2);
  assert.match(result.stderr, /broken\.yaml: not valid YAML/);
});

test('check-config of a good file exits 0', () => {
  const file = join(dir, 'good.yaml');
  writeFileSync(file, 'upstreams:\n  - name: payments\n    prefix: /pay\n    target: https://api.example.com/api\n');
  const result = run(['check-config', file]);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, `${file}: ok\n`);
  assert.equal(result.stderr, '');
});

test('schema prints the draft-07 JSON Schema', () => {
  const result = run(['schema']);
  assert.equal(result.status, 0, result.stderr);
  const schema = JSON.parse(result.stdout) as { $schema: string; properties: Record<string, unknown> };
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.ok('upstreams' in schema.properties);
});

test('an unknown option or command exits 2', () => {
  const option = run(['--no-such-option']);
  assert.equal(option.status, 2);
  assert.match(option.stderr, /unknown option/i);
  const check = run(['check-config']);
  assert.equal(check.status, 2, 'a missing argument is a usage error');
  assert.match(check.stderr, /missing required argument/i);
});

test('--help exits 0', () => {
  const result = run(['--help']);
  assert.equal(result.status, 0);
  assert.match(result.stdout, /check-config/);
});

test('start with no upstream exits 2', async () => {
  const wg = launchWriteguard(['start'], { WRITEGUARD_PORT: '0', WRITEGUARD_ADMIN_PORT: '0' });
  running.push(wg);
  assert.equal(await wg.exited, 2);
  assert.match(wg.stderr(), /upstreams: at least one upstream is needed/);
  await assert.rejects(wg.ready);
});

test('start with a bad environment override exits 2', async () => {
  const wg = launchWriteguard(['--upstream', 'http://127.0.0.1:1'], { WRITEGUARD_PORT: 'eighty', WRITEGUARD_ADMIN_PORT: '0' });
  running.push(wg);
  assert.equal(await wg.exited, 2);
  assert.match(wg.stderr(), /listen\.port: /);
});

test('--upstream URL starts, proxies a GET, answers /healthz, and exits 0 on SIGTERM', async (t) => {
  const up = await startUpstream();
  t.after(() => up.close());
  const wg = launchWriteguard(['--upstream', up.url], { WRITEGUARD_PORT: '0', WRITEGUARD_ADMIN_PORT: '0' });
  running.push(wg);
  const { listen, admin } = await wg.ready;
  assert.equal(listen.length, 1);
  assert.match(listen[0]!, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(admin, /^http:\/\/127\.0\.0\.1:\d+$/);

  const res = await fetch(`${listen[0]}/v1/balance?currency=eur`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { method: 'GET', url: '/v1/balance?currency=eur', body: '' });
  assert.equal(up.count('/v1/balance'), 1);

  const health = await fetch(`${admin}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' });
  const ready = await fetch(`${admin}/readyz`);
  assert.equal(ready.status, 200);

  const lines = await wg.logs.waitForResponses(1);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.path, '/v1/balance');
  assert.equal(lines[0]!.status, 200);

  wg.kill('SIGTERM');
  assert.equal(await wg.exited, 0, wg.stderr());
  assert.ok(wg.logs.lines.some((l) => l.msg === 'stopped'));
});

test('--pretty into a pipe: readable lines without colour codes (colours are for a terminal)', async (t) => {
  const up = await startUpstream();
  t.after(() => up.close());
  const child = spawn(process.execPath, [CLI, '--pretty', '--upstream', up.url], {
    env: { PATH: process.env.PATH, WRITEGUARD_PORT: '0', WRITEGUARD_ADMIN_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await until(() => out.includes('writeguard listening'), { timeoutMs: 10_000, intervalMs: 20 });
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  assert.match(out, /INFO.*writeguard listening/);
  assert.ok(!out.includes('\u001b['), 'no ANSI escape codes');
});
