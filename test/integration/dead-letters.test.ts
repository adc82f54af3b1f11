// Dead letters: outcome_unknown writes are listed and settled by an operator (admin route with the
// token, or the CLI against Redis): not executed → the retry runs once; executed → the retry replays.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { expectProblem, post } from '../helpers/problem.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { CLI, startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const TOKEN = 'admin-token-0123456789';
let up: CountingUpstream;
let failing = true;
let redis: RedisServer;
let wg: RunningWriteguard;
let n = 0;

before(async () => {
  up = await startUpstream((_req, res) => {
    if (failing) return void res.socket?.destroy(); // executed, then the connection dies: unknown
    res.writeHead(201, { 'content-type': 'application/json' });
    res.end(`{"id":"pay_${up.received.length}"}`);
  });
  redis = await startRedis();
  wg = await startWriteguard({
    admin: { token: TOKEN },
    store: { kind: 'redis', url: redis.url, initOnEmpty: true },
    upstreams: [{ name: 'pay', target: up.url }],
  });
  assert.equal(await wg.server.store.whenReady(5000), true);
});
after(async () => {
  await wg.close();
  await redis.stop();
  await up.close();
});

interface Letter {
  id: string;
  path: string;
  epoch: number;
  upstream_key: string;
  state: string;
}

/** Makes one outcome_unknown write and returns its dead letter. */
async function deadLetter(path: string, key: string): Promise<Letter> {
  failing = true;
  await expectProblem(await post(`${wg.url}${path}`, '{"amount":3}', { 'idempotency-key': key }), 502, 'outcome_unknown');
  failing = false;
  await expectProblem(await fetch(`${wg.adminUrl}/dead-letters`), 401, 'unauthorized'); // with a token set, the admin routes need it
  const list = (await (await fetch(`${wg.adminUrl}/dead-letters`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
    dead_letters: Letter[];
  };
  const letter = list.dead_letters.find((d) => d.path === path);
  assert.ok(letter, 'listed');
  assert.equal(letter.state, 'outcome_unknown');
  assert.equal(letter.upstream_key, key);
  return letter;
}

const resolve = (id: string, body: unknown, token: string | null = TOKEN) =>
  fetch(`${wg.adminUrl}/dead-letters/${id}/resolve`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
  });

test("admin: resolve as not executed (with the token) → the agent's retry runs exactly once", async () => {
  const path = `/v1/dl-${++n}`;
  const letter = await deadLetter(path, `dl-${n}`);
  await expectProblem(await resolve(letter.id, { outcome: 'not_executed' }, null), 401, 'unauthorized');
  await expectProblem(await resolve(letter.id, { outcome: 'not_executed' }, 'wrong-token-0123456789'), 401, 'unauthorized');
  await expectProblem(await post(`${wg.url}${path}`, '{"amount":3}', { 'idempotency-key': `dl-${n}` }), 502, 'outcome_unknown');
  await expectProblem(await resolve(letter.id, { outcome: 'not_executed', epoch: letter.epoch + 1 }), 409, 'stale'); // a stale epoch is refused
  assert.equal((await resolve(letter.id, { outcome: 'not_executed', epoch: letter.epoch })).status, 200);
  const retry = await post(`${wg.url}${path}`, '{"amount":3}', { 'idempotency-key': `dl-${n}` });
  assert.equal(retry.status, 201);
  assert.equal(
    (await post(`${wg.url}${path}`, '{"amount":3}', { 'idempotency-key': `dl-${n}` })).headers.get('idempotent-replayed'),
    'true',
  );
  assert.equal(up.count(path), 2, 'the unknown attempt, then the one retry');
});

test('admin: resolve as executed with a response → the retry replays it, nothing re-sent', async () => {
  const path = `/v1/dl-${++n}`;
  const letter = await deadLetter(path, `dl-${n}`);
  const ok = await resolve(letter.id, {
    outcome: 'executed',
    response: { status: 201, headers: { 'content-type': 'application/json' }, body: '{"id":"pay_found"}' },
  });
  assert.equal(ok.status, 200);
  const retry = await post(`${wg.url}${path}`, '{"amount":3}', { 'idempotency-key': `dl-${n}` });
  assert.equal(retry.status, 201);
  assert.equal(retry.headers.get('idempotent-replayed'), 'true');
  assert.deepEqual(await retry.json(), { id: 'pay_found' });
  assert.equal(up.count(path), 1);
  await expectProblem(await resolve(letter.id, { outcome: 'not_executed' }), 409, 'stale'); // a settled record is no dead letter
});

test('admin: a malformed resolution is a 400; the resolve route does not exist without a token', async () => {
  const path = `/v1/dl-${++n}`;
  const letter = await deadLetter(path, `dl-${n}`);
  const invalid = await expectProblem(await resolve(letter.id, { outcome: 'maybe' }), 400, 'invalid_resolution');
  assert.match(invalid.detail, /^outcome: /);
  await expectProblem(await resolve('not-an-id', { outcome: 'not_executed' }), 404, 'not_found');
  const notJson = await fetch(`${wg.adminUrl}/dead-letters/${letter.id}/resolve`, {
    method: 'POST',
    body: '{not json',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
  });
  await expectProblem(notJson, 400, 'bad_request');
  const open = await startWriteguard({ store: { kind: 'memory' }, upstreams: [{ name: 'pay', target: up.url }] });
  try {
    const res = await fetch(`${open.adminUrl}/dead-letters/${letter.id}/resolve`, {
      method: 'POST',
      body: '{"outcome":"not_executed"}',
      headers: { 'content-type': 'application/json' },
    });
    await expectProblem(res, 404, 'not_found');
  } finally {
    await open.close();
  }
});

/** Runs the CLI without blocking this process's event loop: the writeguard under test lives in it. */
async function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, REDIS_URL: redis.url }, timeout: 15_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [status] = (await once(child, 'close')) as [number | null];
  return { status, stdout, stderr };
}

test('CLI: dlq list, then dlq resolve --not-executed → the retry runs once', async () => {
  const path = `/v1/dl-${++n}`;
  await deadLetter(path, `dl-${n}`);
  const list = await cli(['dlq', 'list']);
  assert.equal(list.status, 0, list.stderr);
  const letter = (JSON.parse(list.stdout) as { dead_letters: Letter[] }).dead_letters.find((d) => d.path === path)!;
  const resolved = await cli(['dlq', 'resolve', letter.id, '--not-executed', '--epoch', String(letter.epoch)]);
  assert.equal(resolved.status, 0, resolved.stderr);
  assert.equal((await post(`${wg.url}${path}`, '{"amount":3}', { 'idempotency-key': `dl-${n}` })).status, 201);
  assert.equal(up.count(path), 2);
  assert.equal((await cli(['dlq', 'resolve', letter.id, '--not-executed'])).status, 1, 'nothing left to resolve');
});

test('CLI: dlq resolve --executed --response FILE → the retry replays that answer', async () => {
  const path = `/v1/dl-${++n}`;
  const letter = await deadLetter(path, `dl-${n}`);
  const file = join(mkdtempSync(join(tmpdir(), 'wg-dlq-')), 'response.json');
  writeFileSync(file, JSON.stringify({ status: 201, headers: { 'content-type': 'application/json' }, body: '{"id":"pay_cli"}' }));
  const resolved = await cli(['dlq', 'resolve', letter.id, '--executed', '--response', file]);
  assert.equal(resolved.status, 0, resolved.stderr);
  const retry = await post(`${wg.url}${path}`, '{"amount":3}', { 'idempotency-key': `dl-${n}` });
  assert.deepEqual([retry.status, await retry.json()], [201, { id: 'pay_cli' }]);
  assert.equal(up.count(path), 1);
  // Executed without a known answer: the write ran, so its retry is refused, never re-run.
  const other = `/v1/dl-${++n}`;
  const second = await deadLetter(other, `dl-${n}`);
  assert.equal((await cli(['dlq', 'resolve', second.id, '--executed'])).status, 0);
  const lines = wg.logs.responses().length;
  const refused = await expectProblem(
    await post(`${wg.url}${other}`, '{"amount":3}', { 'idempotency-key': `dl-${n}` }),
    409,
    'response_not_replayable',
  );
  // Said as what it is (an operator's resolution, not an answer too large to store), and not logged as a replay.
  assert.match(refused.detail, /an operator resolved this write as executed \(status \d+\) without recording its answer/);
  const [line] = (await wg.logs.waitForResponses(lines + 1)).slice(lines);
  assert.equal(line!.code, 'response_not_replayable');
  assert.notEqual(line!.outcome, 'replayed');
  assert.equal(up.count(other), 1);
  assert.equal((await cli(['dlq', 'resolve', 'not-an-id', '--executed'])).status, 2);
});

test('CLI: keys show prints the record of a key', async () => {
  const key = `shown-${process.pid}`;
  failing = false;
  const shownRes = await post(`${wg.url}/v1/shown`, '{"amount":9}', { 'idempotency-key': key });
  assert.equal(shownRes.status, 201, `${await shownRes.text()} ${JSON.stringify(wg.logs.lines.filter((l) => /store/.test(l.msg)))}`);
  const shown = await cli(['keys', 'show', key, '--upstream', 'pay']);
  assert.equal(shown.status, 0, shown.stderr);
  const [record] = (JSON.parse(shown.stdout) as { records: Array<Record<string, unknown>> }).records;
  assert.equal(record?.state, 'completed');
  assert.equal(record?.status, 201);
  assert.equal(record?.attempts, 1);
  assert.equal(record?.path, '/v1/shown');
  assert.equal((await cli(['keys', 'show', 'never-used', '--upstream', 'pay'])).status, 1);
  // Without --agent or --upstream (and no config file): every scope is scanned.
  const everywhere = await cli(['keys', 'show', key]);
  assert.equal(everywhere.status, 0, everywhere.stderr);
  const [found] = (JSON.parse(everywhere.stdout) as { records: Array<Record<string, unknown>> }).records;
  assert.deepEqual([found?.scope, found?.upstream, found?.state], ['live:default', 'pay', 'completed']);
});
