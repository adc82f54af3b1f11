// The npm package as a user gets it: a clean checkout packs (prepack builds dist), the tarball installs in
// an empty folder, `npx writeguard` runs from there, and `import { startWriteguard } from 'writeguard'`
// works with its type declarations. Slow (an npm install), so one test file does it all once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { ROOT } from '../helpers/deploy-files.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { until } from '../helpers/wait.js';

const NPM_TIMEOUT_MS = 180_000;
const work = mkdtempSync(join(tmpdir(), 'wg-pack-'));
const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
let consumer = '';
let packed: string[] = [];
let up: CountingUpstream;

/** npm with the caller's npm settings dropped (`npm test` exports its own), the cache kept. */
function npm(args: string[], cwd: string): string {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, npm_config_audit: 'false', npm_config_fund: 'false' };
  if (process.env.npm_config_cache !== undefined) env.npm_config_cache = process.env.npm_config_cache;
  return execFileSync('npm', args, { cwd, env, encoding: 'utf8', timeout: NPM_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
}

before(async () => {
  up = await startUpstream();
  // What a clean clone holds (tracked files, and new ones not ignored): no dist, no node_modules.
  const checkout = join(work, 'checkout');
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0');
  for (const file of files.filter((f) => f !== '')) {
    mkdirSync(join(checkout, dirname(file)), { recursive: true });
    cpSync(join(ROOT, file), join(checkout, file));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(checkout, 'node_modules')); // prepack's tsc, without a second npm ci
  const [pack] = JSON.parse(npm(['pack', '--json', '--pack-destination', work], checkout)) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  packed = pack!.files.map((f) => f.path);

  consumer = join(work, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  npm(['install', '--prefer-offline', '--no-package-lock', join(work, pack!.filename)], consumer);
});

after(async () => {
  await up?.close();
  rmSync(work, { recursive: true, force: true });
});

test('the tarball holds the built code, its declarations, the config examples and the LICENSE; no sources, tests or maps', () => {
  for (const file of ['dist/cli.js', 'dist/index.js', 'dist/index.d.ts', 'dist/server.d.ts', 'LICENSE', 'README.md', 'package.json']) {
    assert.ok(packed.includes(file), `${file} is packed`);
  }
  assert.ok(packed.includes('config/writeguard.example.yaml'));
  assert.deepEqual(
    packed.filter((f) => /^(src|test|bench)\/|\.map$/.test(f)),
    [],
  );
});

test('npx writeguard --version, then npx writeguard --upstream URL: a write runs once, its retry is replayed', async () => {
  // `--` keeps npx's own flags apart: `npx writeguard --version` prints npm's version.
  const env = { PATH: process.env.PATH, HOME: process.env.HOME };
  const shown = spawn('npx', ['--no', '--', 'writeguard', '--version'], { cwd: consumer, env });
  let out = '';
  shown.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await once(shown, 'exit');
  assert.equal(out.trim(), version);

  // Its own process group: npx runs writeguard as a child and does not pass signals on, so the group gets them.
  const child = spawn('npx', ['--no', '--', 'writeguard', '--upstream', up.url], {
    cwd: consumer,
    env: { ...env, WRITEGUARD_PORT: '0', WRITEGUARD_ADMIN_PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  let listen: string | undefined;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const parsed = JSON.parse(line) as { msg: string; listen?: string[] };
    if (parsed.msg === 'writeguard listening') listen = parsed.listen![0];
  });
  try {
    assert.ok(await until(() => listen !== undefined, { timeoutMs: 30_000, intervalMs: 50 }), 'writeguard listens');
    const before = up.count('/v1/payments');
    const send = () =>
      fetch(`${listen}/v1/payments`, {
        method: 'POST',
        body: '{"amount":1}',
        headers: { 'content-type': 'application/json', 'idempotency-key': 'pkg-1' },
      });
    assert.equal((await send()).status, 201);
    const retry = await send();
    assert.equal(retry.status, 201);
    assert.equal(retry.headers.get('idempotent-replayed'), 'true');
    assert.equal(up.count('/v1/payments') - before, 1);
  } finally {
    const exited = once(child, 'close'); // stdio closed: writeguard itself has exited, not only npx
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
});

test('the API from the installed package: startWriteguard(config) listens, guards a write, close() stops it', async () => {
  writeFileSync(
    join(consumer, 'api.mjs'),
    `import { startWriteguard } from 'writeguard';
const wg = await startWriteguard({ listen: { port: 0 }, admin: { port: 0 }, logLevel: 'silent', upstreams: [{ name: 'pay', target: process.argv[2] }] });
const send = () => fetch(wg.proxies[0] + '/v1/payments', { method: 'POST', body: '{"amount":2}', headers: { 'idempotency-key': 'api-1' } });
const first = await send();
const second = await send();
const ready = await fetch(wg.admin + '/readyz');
await wg.close();
console.log(JSON.stringify({ first: first.status, second: second.status, replayed: second.headers.get('idempotent-replayed'), ready: ready.status }));
`,
  );
  const before = up.count('/v1/payments');
  // Spawned, not execFileSync: the upstream answering it lives in this process's event loop.
  const child = spawn(process.execPath, ['api.mjs', up.url], { cwd: consumer, stdio: ['ignore', 'pipe', 'inherit'], timeout: 30_000 });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, 'the script ends once close() resolves: nothing is left holding the process');
  assert.deepEqual(JSON.parse(out), { first: 201, second: 201, replayed: 'true', ready: 200 });
  assert.equal(up.count('/v1/payments') - before, 1);
});

test('the type declarations: a typed consumer compiles, and a wrong config does not', () => {
  const tsc = (file: string) =>
    spawnTsc([
      '--noEmit',
      '--strict',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--types',
      'node',
      file,
    ]);
  writeFileSync(
    join(consumer, 'typed.ts'),
    `import { startWriteguard, ConfigError, type RunningWriteguard } from 'writeguard';
const wg: RunningWriteguard = await startWriteguard({ upstreams: [{ name: 'pay', target: 'http://127.0.0.1:9' }] });
const urls: string[] = wg.proxies;
void urls, ConfigError;
await wg.close();
`,
  );
  assert.equal(tsc('typed.ts').status, 0, tsc('typed.ts').out);
  writeFileSync(
    join(consumer, 'wrong.ts'),
    `import { startWriteguard } from 'writeguard';\nawait startWriteguard({ upstreams: 'http://x' });\n`,
  );
  const wrong = tsc('wrong.ts');
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.out, /wrong\.ts\(2,\d+\): error TS2322/, 'the compiler refuses the bad field');
});

function spawnTsc(args: string[]): { status: number; out: string } {
  try {
    // @types/node from the project: the consumer folder has only writeguard and its dependencies.
    const out = execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '--typeRoots', join(ROOT, 'node_modules/@types'), ...args],
      {
        cwd: consumer,
        encoding: 'utf8',
      },
    );
    return { status: 0, out };
  } catch (err) {
    const e = err as { status: number; stdout: string };
    return { status: e.status, out: e.stdout };
  }
}
