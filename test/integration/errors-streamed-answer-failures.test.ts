// A read's answer that streams (of unknown length, or over 64 KiB) can fail after writeguard took it
// and before anyone reads it: while writeguard waits to retry a streamed 503, or when the agent left
// before the head of an event stream came, or mid-way through an error answer too large to inspect
// whole, or with a status fastify cannot send. An error on a stream with no listener is thrown, and an
// uncaught exception stops writeguard (close-with-grace drains and exits): none may escape. And an
// answer nobody will read is closed upstream at once: held, it would keep one of the upstream pool's
// connections for good.
import assert from 'node:assert/strict';
import { request as httpRequest, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { test, type TestContext } from 'node:test';
import { expectProblem } from '../helpers/problem.js';
import { startUpstream, type Responder } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';
import { eventually } from '../helpers/wait.js';

/** Errors thrown to the event loop while the test runs (the process would stop on the first). */
function uncaught(t: TestContext): unknown[] {
  const seen: unknown[] = [];
  const onError = (err: unknown): void => void seen.push(err);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  t.after(() => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  });
  return seen;
}

/** writeguard in front of `responder`; `open()`: the upstream's answers not yet closed. */
async function behind(
  t: TestContext,
  responder: Responder,
): Promise<{ wg: RunningWriteguard; count: (path: string) => number; open: () => number }> {
  const answers = new Set<ServerResponse>();
  const up = await startUpstream((req, res) => {
    answers.add(res);
    res.on('close', () => answers.delete(res));
    return responder(req, res);
  });
  const wg = await startWriteguard({
    upstreams: [
      {
        name: 'api',
        target: up.url,
        retry: { maxAttempts: 2, maxElapsedMs: 5000 },
        routes: [{ match: 'POST /v1/quotes', mode: 'passthrough' }],
      },
    ],
  });
  // The upstream first: writeguard's close waits for its connections, and a held one would never end.
  t.after(async () => {
    await up.close();
    await wg.close();
  });
  return { wg, count: (path) => up.count(path), open: () => answers.size };
}

test('a streamed 503 cut while writeguard waits to retry: the retry answers, nothing is thrown', async (t) => {
  const thrown = uncaught(t);
  let calls = 0;
  const { wg, count } = await behind(t, (_req, res) => {
    if (++calls > 1) return void res.end('{"ok":true}');
    // Chunked (no length): handed over as a stream. Cut 100 ms into the 1 s Retry-After.
    res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
    res.write('restarting');
    setTimeout(() => res.socket?.destroy(), 100);
  });
  const res = await fetch(`${wg.url}/v1/items`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true });
  assert.equal(res.headers.get('x-writeguard-attempts'), '2');
  assert.equal(count('/v1/items'), 2);
  assert.deepEqual(thrown, []);
});

test('an event stream whose agent left before its head: closed upstream at once, nothing is thrown', async (t) => {
  const thrown = uncaught(t);
  let upstreamRes: ServerResponse | null = null;
  let headAt = 0;
  let closedAt = 0;
  const { wg } = await behind(t, async (_req, res) => {
    upstreamRes = res;
    res.on('close', () => (closedAt = Date.now()));
    await sleep(300);
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
    headAt = Date.now();
    // The upstream would keep its stream open for long; it cuts it only as a last resort.
    setTimeout(() => res.socket?.destroy(), 2000);
  });
  const agent = new AbortController();
  const pending = fetch(`${wg.url}/v1/events`, { signal: agent.signal }).catch((err: Error) => err);
  await sleep(100);
  agent.abort();
  assert.ok((await pending) instanceof Error, 'the agent left before any answer');
  await eventually(() => closedAt !== 0, 3000, { what: 'the upstream stream to close' });
  assert.ok(upstreamRes !== null && headAt !== 0, 'the upstream answered after the agent left');
  assert.ok(closedAt - headAt < 1000, `closed ${closedAt - headAt} ms after its head: by writeguard, not by the upstream's own cut`);
  await sleep(200);
  assert.deepEqual(thrown, []);
});

test('an error answer too large to inspect, left mid-body by its agent: closed upstream, on a read and a passthrough', async (t) => {
  const thrown = uncaught(t);
  const { wg, open } = await behind(t, (_req, res) => {
    // A JSON error of unknown length, 8 MiB: writeguard reads its first 64 KiB to find a code, then
    // streams the rest. Written with backpressure, so most of it waits upstream.
    res.writeHead(404, { 'content-type': 'application/json' });
    res.write('{"error":{"code":"not_found","blob":"');
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    let sent = 0;
    const pump = (): void => {
      while (sent < 8 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end('"}}');
    };
    pump();
  });
  const url = new URL(wg.url);
  /** The agent reads the first bytes, then leaves. */
  const leaveMidBody = (method: string, path: string): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, method, path, agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve(res.statusCode!);
        });
      });
      req.on('error', reject);
      req.end(method === 'POST' ? '{}' : undefined);
    });
  assert.equal(await leaveMidBody('GET', '/v1/items'), 404);
  assert.equal(await leaveMidBody('POST', '/v1/quotes'), 404);
  await eventually(() => open() === 0, 3000, { what: 'both upstream answers to be closed' });
  assert.deepEqual(thrown, []);
});

test('a streamed read answered with a status fastify cannot send (999): 500, and the upstream answer closed', async (t) => {
  const thrown = uncaught(t);
  const { wg, open } = await behind(t, (_req, res) => {
    // Valid to Node and undici, outside what fastify sends; chunked, so handed over as a stream.
    res.writeHead(999, { 'content-type': 'application/octet-stream' });
    res.write(Buffer.alloc(256 * 1024, 0x61));
  });
  const res = await fetch(`${wg.url}/v1/odd`);
  await expectProblem(res, 500, 'internal_error');
  await eventually(() => open() === 0, 3000, { what: 'the upstream answer to be closed' });
  assert.deepEqual(thrown, []);
});
