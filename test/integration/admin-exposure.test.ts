// The admin listener off loopback (0.0.0.0 in the image, for probes and scrapers): without a token it
// serves health, readiness and metrics only; with one, everything else asks for it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopback } from '../../src/admin/plugin.js';
import { startUpstream } from '../helpers/upstream.js';
import { launchWriteguard, type WriteguardProcess } from '../helpers/writeguard.js';

const TOKEN = 'a-token-of-sixteen-or-more';
const processes: WriteguardProcess[] = [];
after(async () => {
  for (const p of processes) {
    if (p.child.exitCode === null) p.kill('SIGKILL');
    await p.exited;
  }
});

/** Starts the CLI with WRITEGUARD_ADMIN_HOST=0.0.0.0; requests go to its loopback address only. */
async function exposedAdmin(upstream: string, env: NodeJS.ProcessEnv = {}): Promise<{ admin: string; wg: WriteguardProcess }> {
  const wg = launchWriteguard(['--upstream', upstream], {
    WRITEGUARD_PORT: '0',
    WRITEGUARD_ADMIN_PORT: '0',
    WRITEGUARD_ADMIN_HOST: '0.0.0.0',
    ...env,
  });
  processes.push(wg);
  const ready = await wg.ready;
  return { admin: `http://127.0.0.1:${new URL(ready.admin).port}`, wg };
}

const OPEN = ['/healthz', '/readyz', '/metrics'];
const OPERATOR_READS = ['/dead-letters', '/approvals', '/budgets', '/keys/some-key'];

test('off loopback without a token: health, readiness and metrics answer; every other route does not exist', async (t) => {
  const up = await startUpstream();
  t.after(() => up.close());
  const { admin, wg } = await exposedAdmin(up.url);
  for (const path of OPEN) assert.equal((await fetch(`${admin}${path}`)).status, 200, path);
  for (const path of OPERATOR_READS) assert.equal((await fetch(`${admin}${path}`)).status, 404, path);
  for (const path of ['/approvals/x/approve', '/agents/a/resume', '/dead-letters/x/resolve']) {
    assert.equal((await fetch(`${admin}${path}`, { method: 'POST' })).status, 404, path);
  }
  const warned = wg.logs.lines.filter((l) => l.level === 'warn' && /off loopback without admin.token/.test(l.msg));
  assert.equal(warned.length, 1, 'start-up says why the operator routes are absent');
});

test('off loopback with a token: the operator routes need it', async (t) => {
  const up = await startUpstream();
  t.after(() => up.close());
  const { admin } = await exposedAdmin(up.url, { WRITEGUARD_ADMIN_TOKEN: TOKEN });
  for (const path of OPEN) assert.equal((await fetch(`${admin}${path}`)).status, 200, path);
  for (const path of ['/dead-letters', '/approvals', '/budgets']) {
    assert.equal((await fetch(`${admin}${path}`)).status, 401, path);
    assert.equal((await fetch(`${admin}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200, path);
  }
});

test('on loopback without a token (the default): operator reads answer, as before', async (t) => {
  const up = await startUpstream();
  t.after(() => up.close());
  const wg = launchWriteguard(['--upstream', up.url], { WRITEGUARD_PORT: '0', WRITEGUARD_ADMIN_PORT: '0' });
  processes.push(wg);
  const { admin } = await wg.ready;
  for (const path of ['/dead-letters', '/approvals', '/budgets']) assert.equal((await fetch(`${admin}${path}`)).status, 200, path);
});

test('isLoopback: loopback names and addresses, and nothing else', () => {
  for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1'])
    assert.ok(isLoopback(host), host);
  for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'writeguard', '127.0.0.1.example.com', '1127.0.0.1']) {
    assert.ok(!isLoopback(host), host);
  }
});
