// An answer already waiting in the socket beats the attempt timer. After an event-loop stall longer
// than timeoutMs (a SIGSTOP/SIGCONT, a long GC, a synchronous hog), Node runs expired timers before
// it polls sockets: the attempt's deadline must not turn a complete answer that arrived during the
// stall into outcome_unknown. The upstream runs in a child process so it keeps working while this
// process's loop is blocked; a truly slow upstream must still time out.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { expectProblem, post } from '../helpers/problem.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const TIMEOUT_MS = 300;
/** A "slow" path answers long after TIMEOUT_MS. */
const SLOW_MS = 3000;

// The upstream: counts and timestamps (Date.now(), the clock both processes share) every POST per
// path, answers POST /v1/after-<ms>/… after <ms> (/v1/after-<ms>-big/… with a 512 KiB body; any
// other path after SLOW_MS), and reports on GET /stats. It writes a line when it has read a POST,
// so the test knows when to stall. It exits when its stdin closes (or after 60 s).
const UPSTREAM = `
const http = require('node:http');
const stats = {};
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const path = req.url.split('?')[0];
    if (req.method === 'GET' && path === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify(stats));
    }
    const s = (stats[path] ??= { received: 0, receivedAt: 0, answered: 0, answeredAt: 0, ended: 0 });
    s.received++;
    s.receivedAt = Date.now();
    process.stdout.write('received ' + path + '\\n');
    const body = JSON.stringify({ id: 'pay_' + s.received, path, ...(path.includes('-big/') ? { pad: 'x'.repeat(512 * 1024) } : {}) });
    if (path.startsWith('/v1/slow-body')) {
      // Headers and half the body at once, the rest long after the deadline.
      res.writeHead(201, { 'content-type': 'application/json', 'content-length': String(body.length) });
      res.write(body.slice(0, 5));
      s.answered++;
      s.answeredAt = Date.now();
      return void setTimeout(() => { s.ended++; res.end(body.slice(5)); }, ${SLOW_MS});
    }
    setTimeout(() => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(body);
      s.answered++;
      s.ended++;
      s.answeredAt = Date.now();
    }, Number(/^\\/v1\\/after-(\\d+)(-big)?\\//.exec(path)?.[1] ?? ${SLOW_MS}));
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write('listening ' + server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
setTimeout(() => process.exit(0), 60000);
`;

interface PathStats {
  received: number;
  receivedAt: number;
  answered: number;
  answeredAt: number;
  ended: number;
}

let child: ChildProcess;
let upstreamUrl: string;
let wg: RunningWriteguard;
const waiters: Array<{ line: string; resolve: () => void }> = [];

/** Resolves when the upstream prints `line` (bounded: rejects after `ms`). */
function upstreamSays(line: string, ms = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the upstream never said "${line}"`)), ms);
    waiters.push({ line, resolve: () => (clearTimeout(timer), resolve()) });
  });
}

async function stats(path: string): Promise<PathStats> {
  const all = (await (await fetch(`${upstreamUrl}/stats`, { signal: AbortSignal.timeout(5000) })).json()) as Record<string, PathStats>;
  return all[path] ?? { received: 0, receivedAt: 0, answered: 0, answeredAt: 0, ended: 0 };
}

/** Blocks this process's event loop (timers, sockets, everything) for `ms`. */
function stallFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

before(async () => {
  child = spawn(process.execPath, ['-e', UPSTREAM], { env: { PATH: process.env.PATH }, stdio: ['pipe', 'pipe', 'inherit'] });
  const listening = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (line.startsWith('listening ')) resolve(`http://127.0.0.1:${line.slice('listening '.length)}`);
      for (let k = waiters.length - 1; k >= 0; k--) if (waiters[k]!.line === line) waiters.splice(k, 1)[0]!.resolve();
    });
    child.once('exit', (code) => reject(new Error(`the upstream exited (${code})`)));
    setTimeout(() => reject(new Error('the upstream did not start')), 10_000).unref();
  });
  upstreamUrl = await listening;
  wg = await startWriteguard({ upstreams: [{ name: 'pay', target: upstreamUrl, timeoutMs: TIMEOUT_MS, idempotency: { leaseMs: 5000 } }] });
});

after(async () => {
  await wg?.close();
  if (child && child.exitCode === null) {
    const exited = once(child, 'exit');
    child.stdin!.end();
    child.kill('SIGTERM');
    await exited;
  }
});

/** A write's attempt and a stall of this process's loop, both timed from when the upstream has read the write. */
interface Stall {
  name: string;
  /** Of the writeguard under test. */
  timeoutMs: number;
  answerAfterMs: number;
  stallFromMs: number;
  stallMs: number;
  /** A 512 KiB answer: more than one turn of the loop reads from the socket. */
  big?: boolean;
}

const stalls: Stall[] = [
  // The stall starts as soon as the upstream has the write: the attempt timer (300 ms) expires
  // during it, and the answer (100 ms) lands in the socket during it.
  { name: 'early in the attempt', timeoutMs: TIMEOUT_MS, answerAfterMs: 100, stallFromMs: 0, stallMs: 800 },
  // The stall starts late in a longer attempt, after undici's own 0.5 s timer ticks have run
  // twice: a headers/body timeout of undici's would then expire on the first tick after the stall
  // and destroy the socket before it is read, so the write must rely on writeguard's deadline alone.
  { name: 'late in a longer attempt', timeoutMs: 1200, answerAfterMs: 1100, stallFromMs: 1000, stallMs: 1000 },
  // A large answer is read over several turns of the loop: the deadline waits while each turn brings more.
  { name: 'with a 512 KiB answer', timeoutMs: TIMEOUT_MS, answerAfterMs: 100, stallFromMs: 0, stallMs: 800, big: true },
];

for (const stall of stalls) {
  test(`a stall ${stall.name}: an answer that reached the socket while the loop was stalled past timeoutMs is the answer, not outcome_unknown`, async (t) => {
    const guard =
      stall.timeoutMs === TIMEOUT_MS
        ? wg
        : await startWriteguard({
            upstreams: [{ name: 'pay', target: upstreamUrl, timeoutMs: stall.timeoutMs, idempotency: { leaseMs: stall.timeoutMs + 5000 } }],
          });
    if (guard !== wg) t.after(() => guard.close());
    // The stall must start after the upstream has the write (the attempt timer is armed) and end
    // after the upstream answered and the timer expired; on a loaded machine the "received" line
    // can arrive late, so a run where that did not happen proves nothing and is repeated (at most 3
    // times, each a new operation).
    for (let run = 1; run <= 3; run++) {
      const path = `/v1/after-${stall.answerAfterMs}${stall.big === true ? '-big' : ''}/${stall.timeoutMs}-${run}`;
      const key = `stall-${process.pid}-${path}`;
      const answer = post(`${guard.url}${path}`, '{"amount":100}', { 'idempotency-key': key });
      await upstreamSays(`received ${path}`);
      if (stall.stallFromMs > 0) await new Promise((r) => setTimeout(r, stall.stallFromMs));
      // Stall from the check phase (setImmediate): after it the loop runs expired timers before it
      // polls sockets again, as after a SIGSTOP/SIGCONT (epoll_wait returns EINTR and libuv goes on
      // to timers). A stall inside a timer callback would be followed by a poll first.
      await new Promise((r) => setImmediate(r));
      const stallStart = Date.now();
      stallFor(stall.stallMs);
      const stallEnd = Date.now();
      const res = await answer;
      const text = await res.text();
      const s = await stats(path);
      t.diagnostic(
        `run ${run}: received ${s.receivedAt - stallStart} ms from the stall's start, answered ${s.answeredAt - stallStart} ms, stall ${stallEnd - stallStart} ms`,
      );
      assert.equal(s.received, 1, 'the upstream executed the write exactly once');
      if (!(s.answeredAt > stallStart && s.answeredAt < stallEnd && stallEnd - s.receivedAt > stall.timeoutMs)) continue; // the race was not set up
      assert.equal(res.status, 201, text);
      assert.deepEqual(JSON.parse(text), { id: 'pay_1', path, ...(stall.big === true ? { pad: 'x'.repeat(512 * 1024) } : {}) });
      // The true answer was stored: a retry replays it, still one execution upstream.
      const retry = await post(`${guard.url}${path}`, '{"amount":100}', { 'idempotency-key': key });
      assert.equal(retry.status, 201);
      assert.equal(retry.headers.get('idempotent-replayed'), 'true');
      assert.equal(await retry.text(), text);
      assert.equal((await stats(path)).received, 1);
      return;
    }
    assert.fail('in 3 runs the upstream never answered during the stall (machine too loaded to set up the race)');
  });
}

test('a truly slow upstream still times out: no answer by the deadline → 504 outcome_unknown, sent once', async () => {
  const path = '/v1/slow';
  await expectProblem(await post(`${wg.url}${path}`, '{"amount":1}', { 'idempotency-key': `slow-${process.pid}` }), 504, 'outcome_unknown');
  const s = await stats(path);
  assert.equal(s.received, 1);
  assert.equal(s.answered, 0, 'writeguard gave up before the upstream answered');
});

test('an answer that started but whose body is still coming at the deadline times out too (no endless grace)', async () => {
  const path = '/v1/slow-body';
  await expectProblem(
    await post(`${wg.url}${path}`, '{"amount":1}', { 'idempotency-key': `slow-body-${process.pid}` }),
    504,
    'outcome_unknown',
  );
  const s = await stats(path);
  assert.equal(s.received, 1);
  assert.equal(s.answered, 1, 'the status line and part of the body had arrived');
  assert.equal(s.ended, 0, 'writeguard gave up before the body ended');
});
