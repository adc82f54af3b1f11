// What runs on the server core: the upstream, a private Redis, and each contender in front of the
// upstream, every one its own process, started here and stopped by PID.
import { writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { ensureNginx, startNginx } from './nginx.mjs';
import { CORE_SUT, freePort, start, stop, waitForHttp, waitForPort } from './lib/procs.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
export const ROOT = here('../');

/**
 * GET /__count on a fresh connection each time (no keep-alive socket to race the server's close),
 * tried three times: one lost answer must not sink a 12-minute run.
 */
async function countOf(port) {
  let last;
  for (let i = 0; i < 3; i++) {
    try {
      return await new Promise((resolve, reject) => {
        const req = get({ host: '127.0.0.1', port, path: '/__count', agent: false, timeout: 5000 }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () =>
            res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`/__count answered ${res.statusCode}`)),
          );
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('/__count timed out')));
        req.on('error', reject);
      });
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`the upstream on port ${port} did not give its count: ${last.message}`);
}

/** The loopback upstream (bench/upstream.mjs). `count()` is what reached it, by method. */
export async function startUpstream(tmp, { name = 'upstream', postDelayMs = 0, core = CORE_SUT } = {}) {
  const port = await freePort();
  const entry = start(name, 'node', [here('./upstream.mjs')], {
    core,
    env: { PORT: String(port), POST_DELAY_MS: String(postDelayMs) },
    stderr: join(tmp, `${name}.stderr.log`),
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/__count`, { entry });
  return {
    entry,
    port,
    url,
    count: () => countOf(port),
  };
}

/** A helper server of the bench (a script here, started on a free port, pinned, stopped by PID) with a GET /__count. */
async function startCounting(tmp, script, { name, core }) {
  const port = await freePort();
  const entry = start(name, 'node', [here(script)], { core, env: { PORT: String(port) }, stderr: join(tmp, `${name}.stderr.log`) });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/__count`, { entry });
  return { entry, port, url, count: () => countOf(port) };
}

/**
 * An alert receiver that hangs (bench/hanging-receiver.mjs): it reads every request and never
 * answers. `count()` is { received, answered, abandoned } (abandoned: closed by the sender unanswered).
 */
export function startHangingReceiver(tmp, { name = 'receiver-hang', core = CORE_SUT } = {}) {
  return startCounting(tmp, './hanging-receiver.mjs', { name, core });
}

/**
 * An OTLP/HTTP trace receiver that accepts and discards (bench/otlp-sink.mjs): the collector of the
 * tracing-on contender. `count()` is { requests, spans, bytes }.
 */
export function startOtlpSink(tmp, { name = 'otlp-sink', core = CORE_SUT } = {}) {
  return startCounting(tmp, './otlp-sink.mjs', { name, core });
}

/** A private redis-server on a free port: no persistence (a bench, not a store of record). */
export async function startRedis(tmp, { name = 'redis', core = CORE_SUT, wrap = [], readyTimeoutMs = 10_000 } = {}) {
  const port = await freePort();
  // `wrap`: a command redis-server runs under (valgrind for bench/redis-instructions.mjs).
  const server = ['redis-server', '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmp];
  const [cmd, ...args] = [...wrap, ...server];
  const entry = start(name, cmd, args, { core, stdout: join(tmp, `${name}.log`) });
  await waitForPort(port, { entry, timeoutMs: readyTimeoutMs });
  const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
  // Errors surface on the calls themselves; the event would only print noise at shutdown.
  client.on('error', () => {});
  return {
    entry,
    port,
    client,
    /** Calls per command since start (INFO commandstats), without our own INFO calls. */
    async calls() {
      const info = await client.info('commandstats');
      const out = {};
      for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') out[m[1]] = Number(m[2]);
      return out;
    },
    async close() {
      client.disconnect();
      await stop(entry);
    },
  };
}

/**
 * The agent leash as the bench runs it (`leash: true`): one spend budget on the new-write route and
 * an intent on the upstream, both checked and reserved inside the begin script. The limit is the
 * largest allowed (2^53 − 1 minor units), so the budget counts every write and refuses none; every
 * new write's body is unique (load-worker.mjs), so the intent check passes every one.
 */
const LEASH_BUDGETS = [
  'budgets:',
  "  - { name: bench-daily, match: 'POST /v1/payments', amount: 'body:amount', scale: 0, limit: 9007199254740991, period: day }",
];
const LEASH_INTENT = '    intent: { fields: [body:amount, body:currency, body:customer], windowSec: 600, keyed: guard }';

/**
 * A budget no bench write fits (`refuseAll: true`): the body's amount (1250) is over the limit (1),
 * so every POST /v1/payments is refused 403 limit_exceeded before it reaches the upstream — and
 * each refusal emits a `limit_exceeded` alert when alerts are on.
 */
const ZERO_BUDGETS = [
  'budgets:',
  "  - { name: bench-zero, match: 'POST /v1/payments', amount: 'body:amount', scale: 0, limit: 1, period: day }",
];
/** The alerts section (`alertsUrl`): every event type, the default queue (1000) and timeout (5 s). */
const alertsSection = (url) => [
  'alerts:',
  `  webhook: { url: "${url}", secret: bench-alerts-secret-0123456789, events: [limit_exceeded, approval_required, agent_paused, outcome_unknown] }`,
];

function writeguardConfig({ port, adminPort, upstreamUrl, redisPort, leash = false, refuseAll = false, alertsUrl = null }) {
  // Defaults everywhere else: logging at info (its cost is part of the product), every check on.
  return [
    `listen: { host: 127.0.0.1, port: ${port} }`,
    `admin: { host: 127.0.0.1, port: ${adminPort} }`,
    // The bench writes a few hundred thousand unique keys, far past the memory store's default cap
    // (100,000 records, sized for a day of one agent): raised, or the rounds would measure 503 store_full.
    redisPort === null
      ? 'store: { kind: memory, memory: { maxRecords: 5000000, maxBytes: 4294967296 } }'
      : `store: { kind: redis, url: "redis://127.0.0.1:${redisPort}", initOnEmpty: true }`,
    'logLevel: info',
    ...(leash ? LEASH_BUDGETS : []),
    ...(refuseAll ? ZERO_BUDGETS : []),
    ...(alertsUrl === null ? [] : alertsSection(alertsUrl)),
    'upstreams:',
    '  - name: bench',
    '    prefix: /',
    `    target: ${upstreamUrl}`,
    ...(leash ? [LEASH_INTENT] : []),
    '',
  ].join('\n');
}

/**
 * writeguard from the built CLI. Its log lines go to /dev/null (written, not disabled); stderr is
 * kept for a post-mortem. `cpuProfDir` runs it under --cpu-prof (written when it exits on SIGTERM);
 * `leash` adds the agent leash's budget and intent (LEASH_BUDGETS, LEASH_INTENT); `refuseAll` a budget
 * every bench write is over (ZERO_BUDGETS); `alertsUrl` an alert webhook (alertsSection); `otlpUrl`
 * turns OpenTelemetry tracing on, exporting there (otherwise it is off, whatever the bench's own
 * environment says). `cli` is the build to run (bench/ab.mjs runs two). `heapProbe`: a file where
 * lib/heap-probe.mjs writes the live heap after a full collection each time the process gets SIGWINCH.
 * `env`: more environment for the process (bench/redis-instructions.mjs loads its capture hook so).
 */
export async function startWriteguard({
  tmp,
  name,
  upstreamUrl,
  redisPort = null,
  cpuProfDir = null,
  leash = false,
  refuseAll = false,
  alertsUrl = null,
  otlpUrl = null,
  cli = join(ROOT, 'dist/cli.js'),
  wrap = [],
  readyTimeoutMs = 20_000,
  heapProbe = null,
  env = {},
}) {
  const [port, adminPort] = [await freePort(), await freePort()];
  const configFile = join(tmp, `${name}.yaml`);
  writeFileSync(configFile, writeguardConfig({ port, adminPort, upstreamUrl, redisPort, leash, refuseAll, alertsUrl }));
  const node = cpuProfDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir];
  // `wrap`: a command node runs under (valgrind for bench/instructions.mjs); the PID is then the wrapper's.
  const [cmd, ...args] = [...wrap, 'node', ...node, cli, '--config', configFile];
  const entry = start(name, cmd, args, {
    core: CORE_SUT,
    // The SDK's signal-specific endpoint wins over the general one: both are set, one of them empty.
    env: {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
      OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl ?? '',
      ...(heapProbe === null
        ? {}
        : { NODE_OPTIONS: `--import ${pathToFileURL(here('lib/heap-probe.mjs')).href}`, WG_HEAP_PROBE: heapProbe }),
      ...env,
    },
    stdout: 'ignore',
    stderr: join(tmp, `${name}.stderr.log`),
    cwd: ROOT,
  });
  await waitForHttp(`http://127.0.0.1:${adminPort}/readyz`, { entry, timeoutMs: readyTimeoutMs });
  return {
    entry,
    url: `http://127.0.0.1:${port}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    pids: () => [entry.pid],
    stop: () => stop(entry, { graceMs: 10_000 }),
  };
}

/** `wrap` and `readyTimeoutMs` as for writeguard. */
async function startNodeServer(tmp, name, script, env, nodeArgs = [], { wrap = [], readyTimeoutMs = 15_000 } = {}) {
  const port = await freePort();
  const [cmd, ...args] = [...wrap, 'node', ...nodeArgs, here(script)];
  const entry = start(name, cmd, args, {
    core: CORE_SUT,
    env: { PORT: String(port), ...env },
    stderr: join(tmp, `${name}.stderr.log`),
    cwd: ROOT,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/v1/items`, { entry, timeoutMs: readyTimeoutMs });
  return { entry, url, pids: () => [entry.pid], stop: () => stop(entry, { graceMs: 10_000 }) };
}

/** The fastify floor (bench/servers/fastify-floor.mjs); `cpuProfDir`, `wrap` and `readyTimeoutMs` as for writeguard. */
export function startFloor({ tmp, upstreamUrl, name = 'floor', cpuProfDir = null, wrap = [], readyTimeoutMs }) {
  return startNodeServer(
    tmp,
    name,
    './servers/fastify-floor.mjs',
    { UPSTREAM: upstreamUrl },
    cpuProfDir === null ? [] : ['--cpu-prof', '--cpu-prof-dir', cpuProfDir],
    { wrap, readyTimeoutMs },
  );
}

/**
 * The contenders, in the order they are run within a workload. `start` gets the shared
 * infrastructure ({ tmp, upstream, redis, nginx }) and returns { url, pids(), stop(), redisPid? }.
 */
export const CONTENDERS = [
  {
    id: 'direct',
    label: 'direct (no proxy)',
    // The upstream itself is the system under test: the physical limit.
    start: async ({ upstream }) => ({ url: upstream.url, pids: () => [upstream.entry.pid], stop: async () => {} }),
  },
  {
    id: 'bare',
    label: 'bare @fastify/http-proxy',
    start: ({ tmp, upstream }) => startNodeServer(tmp, 'bare', './servers/bare-proxy.mjs', { UPSTREAM: upstream.url }),
  },
  {
    id: 'floor',
    label: 'fastify floor (no logic)',
    // Not a product: the least writeguard's own stack (fastify + undici) can cost. See its header.
    start: ({ tmp, upstream }) => startFloor({ tmp, upstreamUrl: upstream.url }),
  },
  {
    id: 'nginx',
    label: 'nginx (1 worker)',
    available: (infra) => (infra.nginx.skip === undefined ? null : infra.nginx.skip),
    start: async ({ tmp, upstream, nginx }) => {
      const port = await freePort();
      const n = await startNginx({ path: nginx.path, tmp, port, upstreamPort: upstream.port });
      return {
        url: `http://127.0.0.1:${port}`,
        pids: n.pids,
        stop: async () => {
          const workers = n.pids().slice(1);
          await stop(n.entry);
          // The master takes its workers with it; make sure, by their PIDs.
          for (const pid of workers) {
            try {
              process.kill(pid, 'SIGKILL');
            } catch {
              /* gone, as it should be */
            }
          }
        },
      };
    },
  },
  {
    id: 'setnx',
    label: 'bare proxy + SET NX/SET',
    writesOnly: true,
    usesRedis: true,
    start: async ({ tmp, upstream, redis }) => ({
      ...(await startNodeServer(tmp, 'setnx', './servers/setnx-proxy.mjs', { UPSTREAM: upstream.url, REDIS_PORT: String(redis.port) })),
      redisPid: redis.entry.pid,
    }),
  },
  {
    id: 'wg-mem',
    label: 'writeguard (memory)',
    start: ({ tmp, upstream }) => startWriteguard({ tmp, name: 'wg-mem', upstreamUrl: upstream.url }),
  },
  {
    id: 'wg-redis',
    label: 'writeguard (Redis)',
    usesRedis: true,
    start: async ({ tmp, upstream, redis }) => ({
      ...(await startWriteguard({ tmp, name: 'wg-redis', upstreamUrl: upstream.url, redisPort: redis.port })),
      redisPid: redis.entry.pid,
    }),
  },
  {
    id: 'wg-otel',
    label: 'writeguard (Redis, tracing on)',
    // wg-redis with OpenTelemetry on, exporting to a loopback sink that accepts and discards: what
    // tracing adds to a new write (off, the default, is wg-redis itself).
    writesOnly: true,
    usesRedis: true,
    available: () => (process.env.BENCH_TRACING === '0' ? 'BENCH_TRACING=0' : null),
    start: async ({ tmp, upstream, redis }) => {
      const sink = await startOtlpSink(tmp);
      const wg = await startWriteguard({ tmp, name: 'wg-otel', upstreamUrl: upstream.url, redisPort: redis.port, otlpUrl: sink.url });
      let exported = null;
      return {
        ...wg,
        redisPid: redis.entry.pid,
        /** What the sink received, read once writeguard has stopped (its shutdown exports the last spans). */
        exported: () => exported,
        stop: async () => {
          await wg.stop();
          exported = await sink.count();
          await stop(sink.entry);
        },
      };
    },
  },
  {
    id: 'wg-leash',
    label: 'writeguard (Redis, leash on)',
    // wg-redis plus one budget and one intent: what the agent leash adds to a new write.
    writesOnly: true,
    usesRedis: true,
    start: async ({ tmp, upstream, redis }) => ({
      ...(await startWriteguard({ tmp, name: 'wg-leash', upstreamUrl: upstream.url, redisPort: redis.port, leash: true })),
      redisPid: redis.entry.pid,
    }),
  },
];

export { ensureNginx };
