// 8. Hostile input against a writeguard process (Redis store, small limits): each must get a clear
// 4xx problem (or a closed connection), reach nothing it should not, and leave writeguard serving.
// Some of these are also tests in test/integration/errors-*.test.ts; here they run against a
// real process, each followed by a liveness probe, with their response lines checked in scenario 9.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedis } from '../../helpers/redis.js';
import { rawRequest, type RawResponse } from '../../helpers/raw-http.js';
import { startChaosUpstream } from '../lib/chaos-upstream.js';
import { agentHeaders, SECRETS } from '../lib/checker.js';
import { wgConfig } from '../lib/config.js';
import type { ExpectedLine } from '../lib/logs.js';
import { sleep, startWg, until, type WgProc } from '../lib/procs.js';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';

/** Raw answers writeguard gave here: each must have its response line (checked in scenario 9). */
export const expectedLines: ExpectedLine[] = [];

const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
const MAX_CONNECTIONS = 20;
const MAX_BODY = 4096;
const SLOW_BOUND_MS = 45_000;

interface Slow {
  ms: number;
  answer: string;
}

/** A client that sends one byte per second: in the headers, or in a declared body. Resolves when writeguard cuts it. */
function slowClient(port: number, kind: 'headers' | 'body'): Promise<Slow> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port });
    let out = '';
    let timer: NodeJS.Timeout | undefined;
    const done = (): void => {
      clearInterval(timer);
      clearTimeout(bound);
      socket.destroy();
      resolve({ ms: Date.now() - started, answer: out.split('\r\n')[0] ?? '' });
    };
    const bound = setTimeout(done, SLOW_BOUND_MS);
    socket.on('data', (d) => (out += d.toString('latin1')));
    socket.on('close', done);
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      socket.write(
        kind === 'headers'
          ? 'POST /v1/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: '
          : `POST /v1/payments HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nIdempotency-Key: slow-body\r\nx-agent-id: agent-8\r\nContent-Length: 100\r\n\r\n`,
      );
      timer = setInterval(() => socket.writable && socket.write('a'), 1000);
    });
  });
}

export const s08: Scenario = {
  id: '8',
  title: 'hostile input',
  limitMs: 120_000,
  async run(ctx) {
    const redis = await startRedis();
    ctx.defer(() => redis.stop());
    const chaos = await startChaosUpstream({ bodySecret: SECRETS.body });
    ctx.defer(() => chaos.close());
    const config = wgConfig({
      redisUrl: redis.url,
      chaosUrl: chaos.url,
      stripePort: null,
      limits: { headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS, maxConnections: MAX_CONNECTIONS },
    });
    const pay = config.upstreams[0]!;
    pay.idempotency = { ...pay.idempotency, maxBodyBytes: MAX_BODY };
    pay.routes = [{ match: 'POST /v1/ledger', idempotency: { keyFrom: ['header', 'body:referenceId'], fingerprint: 'canonical-json' } }];
    const wg = await startWg('8', 'wg-hostile', config);
    ctx.defer(() => wg.stop());
    const port = Number(new URL(wg.listen[0]!).port);
    const checker = ctx.checker();
    const probe = checker.traffic.fetchFor(null, agentHeaders('agent-8'));

    // The slow clients run in the background: they take the longest.
    const slow = Promise.all([slowClient(port, 'headers'), slowClient(port, 'body')]);

    await caseTable(ctx, wg, port, probe, chaos);
    await idleConnections(ctx, wg, port, probe);
    await selfSignedUpstream(ctx, redis.url);

    const [headers, body] = await slow;
    ctx.check(
      `slow headers (1 byte/s) and a 1-byte/s body are cut well before 60 s (${headers.ms} ms, ${body.ms} ms)`,
      headers.ms < SLOW_BOUND_MS && body.ms < SLOW_BOUND_MS,
      `${headers.answer} / ${body.answer}`,
    );
    ctx.note(`slow clients were answered: "${headers.answer}" / "${body.answer}"`);
    const within = REQUEST_TIMEOUT_MS + 5000;
    ctx.check(
      `...and within the configured limits (headersTimeoutMs ${HEADERS_TIMEOUT_MS}, requestTimeoutMs ${REQUEST_TIMEOUT_MS}; allowed ${within} ms)`,
      headers.ms <= within && body.ms <= within,
      `cut after ${headers.ms} ms and ${body.ms} ms`,
    );
    const alive = await probe(`${wg.listen[0]}/v1/ping`).then(
      (r) => (void r.arrayBuffer(), r.status),
      () => 0,
    );
    ctx.check('writeguard still serving after all of it', alive === 200 && wg.running());
  },
};

type Probe = typeof fetch;

async function caseTable(
  ctx: ScenarioContext,
  wg: WgProc,
  port: number,
  probe: Probe,
  chaos: Awaited<ReturnType<typeof startChaosUpstream>>,
): Promise<void> {
  const decoy = createTcpServer((s) => s.destroy());
  let decoyConnections = 0;
  decoy.on('connection', () => decoyConnections++);
  await new Promise<void>((resolve) => decoy.listen(0, '127.0.0.2', resolve));
  const decoyPort = (decoy.address() as AddressInfo).port;
  const origin = wg.listen[0]!;
  const h = 'Host: 127.0.0.1\r\nx-agent-id: agent-8\r\n';
  const post = (extra: string, body = '{"op":"op_s8_x"}', path = '/v1/payments'): string =>
    `POST ${path} HTTP/1.1\r\n${h}Content-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
  const many = (n: number): string => Array.from({ length: n }, (_, i) => `X-H-${i}: v\r\n`).join('');
  const deep = `{"referenceId":"deep-1","a":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;

  const cases: Array<{
    name: string;
    request: string | Buffer;
    expect: Array<[number, string]> | 'closed-or-4xx' | 'no-5xx';
    path?: string;
  }> = [
    {
      name: 'a key of 256 characters',
      request: post(`Idempotency-Key: ${'k'.repeat(256)}\r\n`),
      expect: [[400, 'idempotency_key_invalid']],
    },
    {
      name: 'a key of exactly 255 characters (the limit) is accepted',
      request: post(`Idempotency-Key: ${'k'.repeat(255)}\r\n`, '{"op":"op_s8_key255"}'),
      expect: [[201, '']],
    },
    {
      name: 'a key with a control character',
      request: post('Idempotency-Key: abc\x01def\r\n'),
      expect: [
        [400, 'idempotency_key_invalid'],
        [400, 'bad_request'],
      ],
    },
    {
      name: 'a key with bytes >= 0x80',
      request: Buffer.concat([
        Buffer.from(post('Idempotency-Key: abc').split('abc')[0]! + 'abc', 'latin1'),
        Buffer.from([0xe9, 0xff, 0x80]),
        Buffer.from(`\r\n${post('').split(h)[1]!.replace(/^/, '')}`, 'latin1'),
      ]),
      expect: [
        [400, 'idempotency_key_invalid'],
        [400, 'bad_request'],
      ],
    },
    {
      name: 'two Idempotency-Key headers',
      request: post('Idempotency-Key: one\r\nIdempotency-Key: two\r\n'),
      expect: [[400, 'idempotency_key_invalid']],
    },
    { name: 'two Host headers', request: post('Host: evil.test\r\nIdempotency-Key: two-hosts\r\n'), expect: [[400, 'bad_request']] },
    {
      name: '1,100 header lines with the key last',
      request: post(`${many(1100)}Idempotency-Key: trailing\r\n`),
      expect: [[431, 'headers_too_large']],
    },
    {
      name: 'a 20 KiB header',
      request: post(`X-Big: ${'a'.repeat(20 * 1024)}\r\nIdempotency-Key: big\r\n`),
      expect: [[431, 'headers_too_large']],
    },
    {
      name: 'a body over maxBodyBytes (Content-Length)',
      request: post('Idempotency-Key: too-big\r\n', `{"op":"op_s8_big","pad":"${'x'.repeat(MAX_BODY)}"}`),
      expect: [[413, 'body_too_large']],
    },
    {
      name: 'a chunked body over maxBodyBytes',
      request: `POST /v1/payments HTTP/1.1\r\n${h}Content-Type: application/json\r\nIdempotency-Key: too-big-chunked\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${[1, 2, 3].map(() => `800\r\n${'y'.repeat(0x800)}\r\n`).join('')}0\r\n\r\n`,
      expect: [[413, 'body_too_large']],
    },
    {
      name: 'Content-Length + Transfer-Encoding (CL.TE)',
      request: `POST /v1/payments HTTP/1.1\r\n${h}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGPOST /v1/smuggled HTTP/1.1\r\n${h}\r\n`,
      expect: 'closed-or-4xx',
      path: '/v1/smuggled',
    },
    {
      name: 'Transfer-Encoding: chunked, identity',
      request: `POST /v1/payments HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n`,
      expect: 'closed-or-4xx',
    },
    {
      name: 'two different Content-Length headers',
      request: `POST /v1/payments HTTP/1.1\r\n${h}Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}`,
      expect: 'closed-or-4xx',
    },
    {
      name: 'Transfer-Encoding with a space before the colon',
      request: `POST /v1/payments HTTP/1.1\r\n${h}Transfer-Encoding : chunked\r\nContent-Length: 2\r\n\r\n{}`,
      expect: 'closed-or-4xx',
    },
    {
      name: 'an absolute-form target to another host',
      request: `POST http://127.0.0.2:${decoyPort}/v1/payments HTTP/1.1\r\nHost: 127.0.0.2:${decoyPort}\r\nx-agent-id: agent-8\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
      expect: [[400, 'bad_request']],
    },
    {
      name: 'an absolute-form GET to another host',
      request: `GET http://127.0.0.2:${decoyPort}/ HTTP/1.1\r\nHost: 127.0.0.2:${decoyPort}\r\nConnection: close\r\n\r\n`,
      expect: [[400, 'bad_request']],
    },
    {
      name: 'CONNECT to another host',
      request: `CONNECT 127.0.0.2:${decoyPort} HTTP/1.1\r\nHost: 127.0.0.2:${decoyPort}\r\n\r\n`,
      expect: 'closed-or-4xx',
    },
    { name: 'JSON nested 10,000 deep (canonical-json, key from a body field)', request: post('', deep, '/v1/ledger'), expect: 'no-5xx' },
    {
      name: 'a non-JSON body with a JSON content type',
      request: post('Idempotency-Key: not-json\r\n', 'op_s8_notjson <<not json>> {', '/v1/ledger'),
      expect: 'no-5xx',
    },
  ];

  for (const c of cases) {
    const before = chaos.arrivals.length;
    let res: RawResponse | null = null;
    let error = '';
    try {
      res = await rawRequest(port, c.request, { timeoutMs: 8000 });
    } catch (err) {
      error = (err as Error).message.slice(0, 100);
    }
    let code = '';
    try {
      code = res === null ? '' : ((JSON.parse(res.body.toString('utf8')) as { code?: string }).code ?? '');
    } catch {
      // not a problem body
    }
    const status = res?.status ?? 0;
    let ok: boolean;
    if (c.expect === 'closed-or-4xx') ok = error === '' && (res === null || (status >= 400 && status < 500 && code !== ''));
    else if (c.expect === 'no-5xx') ok = res !== null && status > 0 && status < 500;
    else ok = res !== null && c.expect.some(([s, k]) => s === status && k === code);
    const reached = chaos.arrivals.slice(before);
    const mayReach = c.expect === 'no-5xx' || (Array.isArray(c.expect) && c.expect.some(([st]) => st < 300));
    ok &&= mayReach ? reached.length <= 1 : reached.length === 0;
    const alive = await probe(`${wg.listen[0]}/v1/ping`).then(
      (r) => (void r.arrayBuffer(), r.status),
      () => 0,
    );
    ctx.check(
      `${c.name}: ${c.expect === 'closed-or-4xx' ? '4xx problem or closed' : c.expect === 'no-5xx' ? 'no 5xx, at most one send' : c.expect.map(([s, k]) => `${s} ${k}`).join(' / ')}; still serving`,
      ok && alive === 200,
      `got ${res === null ? `no answer ${error}` : `${status} ${code}`}; upstream saw ${reached.length}; probe ${alive}`,
    );
    if (res !== null) {
      const ids = [res.headers['x-request-id'], res.headers['request-id']].filter((v): v is string => v !== undefined);
      if (ids.length > 0) expectedLines.push({ scenario: '8', origin, requestIds: ids });
    }
  }
  ctx.operations += cases.length;
  ctx.executions += chaos.arrivals.filter((a) => a.executed).length;
  ctx.check('the decoy on 127.0.0.2 received no connection', decoyConnections === 0, `${decoyConnections}`);
  ctx.check('no smuggled request reached the upstream', !chaos.arrivals.some((a) => a.path === '/v1/smuggled'));
  await new Promise<void>((resolve) => decoy.close(() => resolve()));
}

async function idleConnections(ctx: ScenarioContext, wg: WgProc, port: number, probe: Probe): Promise<void> {
  const sockets: Socket[] = [];
  let closedByServer = 0;
  try {
    for (let i = 0; i < MAX_CONNECTIONS * 2; i++) {
      const s = connect({ host: '127.0.0.1', port });
      s.on('error', () => undefined);
      s.on('close', () => closedByServer++);
      sockets.push(s);
    }
    await until(() => closedByServer >= MAX_CONNECTIONS, 3000);
    await sleep(300);
    const health = await fetch(`${wg.admin}/healthz`, { signal: AbortSignal.timeout(3000) }).then(
      (r) => r.status,
      () => 0,
    );
    // The slow clients and the probe's keep-alive connection hold a few of the slots too.
    ctx.check(
      `${MAX_CONNECTIONS * 2} idle connections: the cap (${MAX_CONNECTIONS}) is enforced (${closedByServer} closed at once)`,
      closedByServer >= MAX_CONNECTIONS && closedByServer <= MAX_CONNECTIONS + 5,
    );
    ctx.check('...while saturated, /healthz on the admin port answers', health === 200, `${health}`);
  } finally {
    for (const s of sockets) s.destroy();
  }
  await sleep(200);
  const after = await probe(`${wg.listen[0]}/v1/ping`).then(
    (r) => (void r.arrayBuffer(), r.status),
    () => 0,
  );
  ctx.check('...and once they are gone, requests are served again', after === 200, `${after}`);
}

async function selfSignedUpstream(ctx: ScenarioContext, redisUrl: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'wg-faults-tls-'));
  ctx.defer(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore', timeout: 20_000 },
  );
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  let received = 0;
  const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
    received++;
    req.resume();
    req.on('end', () => res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_tls_${received}` }).end('{"ok":true}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ctx.defer(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const target = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const base = wgConfig({ redisUrl, chaosUrl: target, stripePort: null });
  const tpl = base.upstreams[0]!;
  base.upstreams = [
    { ...tpl, name: 'untrusted', prefix: '/untrusted', target },
    { ...tpl, name: 'trusted', prefix: '/trusted', target, tls: { ca: cert } },
  ];
  const wg = await startWg('8', 'wg-tls', base);
  ctx.defer(() => wg.stop());
  const checker = ctx.checker();
  const f = checker.traffic.fetchFor(null, agentHeaders('agent-8'));
  const call = (path: string, method: string) =>
    f(`${wg.listen[0]}${path}`, {
      method,
      ...(method === 'POST'
        ? { body: '{"op":"op_s8_tls"}', headers: { 'content-type': 'application/json', 'idempotency-key': `tls-${path}` } }
        : {}),
    }).then(
      async (r) => `${r.status} ${r.status >= 400 ? ((await r.json()) as { code?: string }).code : (await r.arrayBuffer(), '')}`.trim(),
      (e: Error) => `error ${e.message}`,
    );
  const refused = [await call('/untrusted/v1/payments', 'POST'), await call('/untrusted/v1/payments', 'GET')];
  const before = received;
  ctx.check(
    'a self-signed HTTPS upstream is refused without its CA: 502 upstream_unreachable, nothing sent',
    refused.every((r) => r === '502 upstream_unreachable') && before === 0,
    `${refused.join(', ')}; upstream received ${before}`,
  );
  const trusted = await call('/trusted/v1/payments', 'POST');
  ctx.check(
    '...and reached once its CA is configured (tls.ca)',
    trusted === '201' && received === 1,
    `${trusted}; upstream received ${received}`,
  );
}
