// A refused oversized write gets its 413 body_too_large on every client, not a connection error.
// writeguard used to answer and close while most of the body was still unread; the kernel then
// reset the connection and Node clients (fetch, undici, node:http) saw EPIPE / ECONNRESET / "other
// side closed" instead of the 413 about half the time — and SDKs retry a connection error.
//
// The Node clients run in a child process of their own, as an agent does: with client and server
// on one event loop the race that loses the 413 hardly ever shows.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expectRawProblem } from '../helpers/problem.js';
import { portOf, rawRequest } from '../helpers/raw-http.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const BODY_BYTES = 5 * 1024 * 1024; // five times the default maxBodyBytes (1 MiB)
const TRIES = 10;
const TRY_TIMEOUT_MS = 10_000;

type Outcome = { status: number; text: string } | { error: string };

/**
 * The client side, plain ESM for `node --input-type=module -e`. argv: url, client, chunked (0|1),
 * tries, body bytes, per-try timeout, undici's module URL. Prints one JSON array of outcomes.
 */
const CLIENT_SCRIPT = String.raw`
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
const [url, client, chunkedArg, triesArg, bytesArg, timeoutArg, undiciUrl] = process.argv.slice(1);
const chunked = chunkedArg === '1';
const timeoutMs = Number(timeoutArg);
const BODY = Buffer.alloc(Number(bytesArg), 0x61);
const HEADERS = { 'content-type': 'application/octet-stream' };
function* chunks() {
  for (let at = 0; at < BODY.length; at += 65536) yield BODY.subarray(at, at + 65536);
}
async function viaFetch() {
  const body = chunked ? new ReadableStream({ start(c) { for (const x of chunks()) c.enqueue(x); c.close(); } }) : BODY;
  const res = await fetch(url, { method: 'POST', body, headers: HEADERS, signal: AbortSignal.timeout(timeoutMs), ...(chunked ? { duplex: 'half' } : {}) });
  return { status: res.status, text: await res.text() };
}
async function viaUndici() {
  const { request } = await import(undiciUrl);
  const res = await request(url, { method: 'POST', headers: HEADERS, body: chunked ? Readable.from(chunks()) : BODY, signal: AbortSignal.timeout(timeoutMs) });
  return { status: res.statusCode, text: await res.body.text() };
}
function viaHttp() {
  return new Promise((resolve, reject) => {
    const headers = chunked ? HEADERS : { ...HEADERS, 'content-length': String(BODY.length) };
    const req = httpRequest(url, { method: 'POST', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    if (chunked) {
      for (const c of chunks()) req.write(c);
      req.end();
    } else {
      req.end(BODY);
    }
  });
}
const send = { fetch: viaFetch, undici: viaUndici, http: viaHttp }[client];
const outcomes = [];
for (let i = 0; i < Number(triesArg); i++) {
  try {
    outcomes.push(await send());
  } catch (err) {
    outcomes.push({ error: [err.code ?? err.cause?.code, err.message, err.cause?.message].filter(Boolean).join(' ') });
  }
}
process.stdout.write(JSON.stringify(outcomes));
`;

function runNodeClient(client: string, url: string, chunked: boolean): Promise<Outcome[]> {
  const args = [
    '--input-type=module',
    '-e',
    CLIENT_SCRIPT,
    url,
    client,
    chunked ? '1' : '0',
    String(TRIES),
    String(BODY_BYTES),
    String(TRY_TIMEOUT_MS),
    import.meta.resolve('undici'),
  ];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { timeout: TRIES * TRY_TIMEOUT_MS + 5000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`the ${client} client failed: ${stderr.trim() || err.message}`));
      resolve(JSON.parse(stdout) as Outcome[]);
    });
  });
}

const hasCurl = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v curl'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let bodyFile = '';
function curlOnce(url: string, chunked: boolean): Promise<Outcome> {
  const args = [
    '-sS',
    '--max-time',
    String(TRY_TIMEOUT_MS / 1000),
    '-X',
    'POST',
    '-H',
    'content-type: application/octet-stream',
    '--data-binary',
    `@${bodyFile}`,
    '-w',
    '\n%{http_code}',
    url,
  ];
  if (chunked) args.unshift('-H', 'transfer-encoding: chunked');
  return new Promise((resolve) => {
    execFile('curl', args, { timeout: TRY_TIMEOUT_MS + 2000, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) return resolve({ error: `curl: ${stderr.trim() || err.message}` });
      const cut = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(cut + 1)), text: stdout.slice(0, cut) });
    });
  });
}

async function runCurl(url: string, chunked: boolean): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (let i = 0; i < TRIES; i++) outcomes.push(await curlOnce(url, chunked));
  return outcomes;
}

const clients: Array<{ name: string; run: (url: string, chunked: boolean) => Promise<Outcome[]>; skip: string | false }> = [
  { name: 'global fetch', run: (url, chunked) => runNodeClient('fetch', url, chunked), skip: false },
  { name: 'undici.request', run: (url, chunked) => runNodeClient('undici', url, chunked), skip: false },
  { name: 'node:http request', run: (url, chunked) => runNodeClient('http', url, chunked), skip: false },
  { name: 'curl', run: runCurl, skip: hasCurl ? false : 'curl is not on PATH' },
];

let up: CountingUpstream;
let wg: RunningWriteguard;
let dir = '';
before(async () => {
  up = await startUpstream();
  wg = await startWriteguard({ store: { kind: 'memory' }, upstreams: [{ name: 'pay', prefix: '/pay', target: up.url }] });
  dir = mkdtempSync(join(tmpdir(), 'wg-body-'));
  bodyFile = join(dir, 'body.bin');
  writeFileSync(bodyFile, Buffer.alloc(BODY_BYTES, 0x61));
});
after(async () => {
  await wg?.close();
  await up?.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function failureOf(outcome: Outcome): string | null {
  if ('error' in outcome) return outcome.error;
  let code = '';
  try {
    code = (JSON.parse(outcome.text) as { code?: string }).code ?? '';
  } catch {
    // not a problem body
  }
  return outcome.status === 413 && code === 'body_too_large' ? null : `${outcome.status} ${code || outcome.text.slice(0, 80)}`;
}

for (const { name, run, skip } of clients) {
  for (const chunked of [false, true]) {
    const framing = chunked ? 'a chunked body' : 'a Content-Length';
    test(`${name}: a 5 MB write with ${framing} gets 413 body_too_large on every try; nothing goes upstream`, { skip }, async () => {
      const linesBefore = wg.logs.responses().length;
      const outcomes = await run(`${wg.url}/pay/v1/payments`, chunked);
      assert.equal(outcomes.length, TRIES);
      const failures = outcomes
        .map((o, i) => [i + 1, failureOf(o)] as const)
        .filter(([, f]) => f !== null)
        .map(([i, f]) => `try ${i}: ${f}`);
      assert.deepEqual(failures, [], `${failures.length} of ${TRIES} tries did not get 413 body_too_large:\n${failures.join('\n')}`);
      assert.equal(up.received.length, 0);
      assert.equal(up.connections(), 0);
      // One response line per try, saying what the agent got.
      const lines = (await wg.logs.waitForResponses(linesBefore + TRIES)).slice(linesBefore);
      assert.deepEqual(
        lines.map((l) => `${l.status} ${l.code}`),
        Array<string>(TRIES).fill('413 body_too_large'),
      );
    });
  }
}

test('a declared length past the drain bound is answered at once, without waiting for the body', async () => {
  const started = Date.now();
  const declared = 1024 * 1024 * 1024; // 1 GiB: far past what writeguard drains (tens of MiB)
  const res = await rawRequest(
    portOf(wg.url),
    `POST /pay/v1/payments HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${declared}\r\n\r\n${'a'.repeat(1024)}`,
    { timeoutMs: 5000 },
  );
  assert.ok(res !== null, 'the server answered');
  expectRawProblem(res, 413, 'body_too_large');
  assert.equal(res.headers.connection, 'close');
  assert.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`);
  assert.equal(up.received.length, 0);
});
