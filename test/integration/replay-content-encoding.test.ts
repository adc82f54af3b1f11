// A replay carries every header needed to read its body (DESIGN §3.9): an upstream that answers a
// write with a gzip-compressed JSON body is replayed with `content-encoding: gzip`, its
// `content-type`, and a `content-length` matching the bytes sent — whatever `replayHeaders` lists.
// Without them the agent cannot read the replay (fetch's `.json()` throws on gzip bytes), and an agent
// that cannot read its payment's answer may well pay again. The upstream runs the write once.
import assert from 'node:assert/strict';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { after, before, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { post } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const REQUEST_LIMIT_MS = 5000;

let up: CountingUpstream;
let wg: RunningWriteguard;
let n = 0;
const key = () => `gz-${process.pid}-${++n}`;

before(async () => {
  up = await startUpstream((req, res) => {
    const payment = { id: `pay_${up.received.length}`, object: 'payment', amount: 4200, currency: 'usd', echo: req.body.toString('utf8') };
    const gz = gzipSync(Buffer.from(JSON.stringify(payment)));
    res.writeHead(201, {
      'content-type': 'application/json',
      'content-encoding': 'gzip',
      'content-length': String(gz.length),
      'request-id': `req_${up.received.length}`,
    });
    res.end(gz);
  });
  wg = await startWriteguard({
    upstreams: [
      {
        name: 'pay',
        target: up.url,
        // An operator who emptied the allow-list for one route.
        routes: [{ match: 'POST /v1/bare/*', idempotency: { replayHeaders: [] } }],
      },
    ],
  });
});
after(async () => {
  await wg.close();
  await up.close();
});

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** node:http, which (unlike fetch) decompresses nothing: the bytes and headers as sent. */
function rawPost(url: string, body: string, headers: Record<string, string>): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
        timeout: REQUEST_LIMIT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within the time limit')));
    req.on('error', reject);
    req.end(body);
  });
}

test('fetch: the first answer and its replay both read with .json(), and are equal', async () => {
  const k = key();
  const path = '/v1/payments';
  const before = up.count(path);
  const first = await post(`${wg.url}${path}`, '{"amount":4200}', { 'idempotency-key': k }, AbortSignal.timeout(REQUEST_LIMIT_MS));
  assert.equal(first.status, 201);
  const firstJson = (await first.json()) as Record<string, unknown>;
  assert.equal(firstJson.object, 'payment');

  const again = await post(`${wg.url}${path}`, '{"amount":4200}', { 'idempotency-key': k }, AbortSignal.timeout(REQUEST_LIMIT_MS));
  assert.equal(again.status, 201);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.equal(up.count(path) - before, 1, 'the upstream ran the write once');
  const raw = Buffer.from(await again.clone().arrayBuffer());
  let againJson: unknown;
  try {
    againJson = await again.json();
  } catch (err) {
    assert.fail(
      `the replay cannot be read (${(err as Error).message}); content-encoding: ${again.headers.get('content-encoding')}, first bytes ${raw.subarray(0, 4).toString('hex')}`,
    );
  }
  assert.deepEqual(againJson, firstJson);
  assert.match(again.headers.get('content-type') ?? '', /^application\/json/);
});

test('node:http (no decompression): the replay says content-encoding gzip, and content-length is the bytes received', async () => {
  const k = key();
  const path = '/v1/payments';
  const before = up.count(path);
  const first = await rawPost(`${wg.url}${path}`, '{"amount":4300}', { 'idempotency-key': k });
  assert.equal(first.status, 201);
  assert.equal(first.headers['content-encoding'], 'gzip');
  const firstJson = JSON.parse(gunzipSync(first.body).toString('utf8')) as unknown;

  const again = await rawPost(`${wg.url}${path}`, '{"amount":4300}', { 'idempotency-key': k });
  assert.equal(again.status, 201);
  assert.equal(again.headers['idempotent-replayed'], 'true');
  assert.equal(up.count(path) - before, 1, 'the upstream ran the write once');
  assert.equal(again.headers['content-encoding'], 'gzip', 'the replayed bytes are gzip: the replay must say so');
  assert.match(again.headers['content-type'] ?? '', /^application\/json/);
  assert.equal(again.headers['content-length'], String(again.body.length), 'content-length matches the bytes sent');
  assert.deepEqual(again.body, first.body, 'the same bytes as the first answer');
  assert.deepEqual(JSON.parse(gunzipSync(again.body).toString('utf8')), firstJson);
});

test('a route with replayHeaders: [] still replays content-encoding and content-type', async () => {
  const k = key();
  const path = '/v1/bare/payments';
  const before = up.count(path);
  const first = await rawPost(`${wg.url}${path}`, '{"amount":4400}', { 'idempotency-key': k });
  assert.equal(first.status, 201);
  const again = await rawPost(`${wg.url}${path}`, '{"amount":4400}', { 'idempotency-key': k });
  assert.equal(again.status, 201);
  assert.equal(again.headers['idempotent-replayed'], 'true');
  assert.equal(up.count(path) - before, 1, 'the upstream ran the write once');
  assert.deepEqual(
    {
      'content-encoding': again.headers['content-encoding'],
      'content-type': again.headers['content-type'],
      'content-length': again.headers['content-length'],
    },
    { 'content-encoding': 'gzip', 'content-type': first.headers['content-type'], 'content-length': String(again.body.length) },
  );
  assert.deepEqual(JSON.parse(gunzipSync(again.body).toString('utf8')), JSON.parse(gunzipSync(first.body).toString('utf8')));

  // And fetch reads it.
  const viaFetch = await post(`${wg.url}${path}`, '{"amount":4400}', { 'idempotency-key': k }, AbortSignal.timeout(REQUEST_LIMIT_MS));
  assert.equal(viaFetch.headers.get('idempotent-replayed'), 'true');
  assert.equal(((await viaFetch.json()) as { object: string }).object, 'payment');
  assert.equal(up.count(path) - before, 1);
});
