// Instructions per request, counted by valgrind's callgrind: what a request costs writeguard's
// process, independent of the machine's speed. CPU time on a shared machine moved by 30-50% between
// runs minutes apart; an instruction count for the same build and load is repeatable. It covers user
// space only (system calls count as the instructions that make them, not the kernel's), so it compares
// sides that make the same system calls per request: leash off against leash on, or two builds.
//
// writeguard runs under callgrind (about 50 times slower) on the server core, its upstream and Redis
// on the load core. After `--warm` requests the counters are zeroed, `--count` more are counted, then
// dumped per thread: the main thread (the event loop: what a request costs) apart from V8's helper
// threads (concurrent compilation and GC, which a longer warm-up shrinks).
//   npm run build && node bench/instructions.mjs [--mode post-key|post-replay|get] [--store redis|memory]
//       [--warm 3000] [--count 2000]                 leash off against leash on (this checkout)
//   ... node bench/instructions.mjs --base BASE_DIST [--leash]   a baseline build against this checkout
//   ... node bench/instructions.mjs --floor --mode post-replay|get    the fastify floor against this checkout
// A side whose helper-thread count is far above the other's was still compiling in the measured window:
// its main thread counts more too, so lengthen --warm (new writes after 3000 of warm-up were not steady:
// 564k against 111k helper instructions, 0.92x on the main thread for a change too small to show).
// Takes about 3 minutes per side for new writes, less for replays and reads. Loopback only; bounded by
// its counts and each request's timeout.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startFloor, startRedis, startUpstream, startWriteguard } from './contenders.mjs';
import { prime } from './phases.mjs';
import { CORE_LOAD, stopAll } from './lib/procs.mjs';
import { BODY, uniqueBody } from './workloads.mjs';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'post-key' },
    store: { type: 'string', default: 'redis' },
    base: { type: 'string' },
    floor: { type: 'boolean', default: false },
    leash: { type: 'boolean', default: false },
    warm: { type: 'string', default: '3000' },
    count: { type: 'string', default: '2000' },
  },
});
const [WARM, COUNT] = [Number(values.warm), Number(values.count)];
const CONCURRENCY = 8;
const LOCAL_CLI = join(ROOT, 'dist/cli.js');

/**
 * The request each mode sends: its `i`th of a run tagged `tag`. A replay's key is the side's own,
 * primed first: one written by another writeguard is in Redis but not in this one's replay cache.
 */
const MODES = {
  'post-key': (url, { tag }, i) => [
    `${url}/v1/payments`,
    { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': `${tag}-${i}` }, body: uniqueBody(tag, i) },
    201,
  ],
  'post-replay': (url, { replayKey }) => [
    `${url}/v1/payments`,
    { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': replayKey }, body: BODY },
    201,
  ],
  get: (url) => [`${url}/v1/items`, { method: 'GET' }, 200],
};
const request = MODES[values.mode];
// The floor answers POSTs from memory: a replay's work, never a new write's; it is compared with this checkout only.
const floorMisused = values.floor && (values.mode === 'post-key' || values.base !== undefined);
if (request === undefined || !['redis', 'memory'].includes(values.store) || floorMisused) {
  process.stderr.write(
    `usage: node bench/instructions.mjs [--mode ${Object.keys(MODES).join('|')}] [--store redis|memory] [--base DIST [--leash] | --floor]\n`,
  );
  process.exit(2);
}

/** `count` requests of the mode, CONCURRENCY at a time; every answer must have the mode's status. */
async function run(url, count, tags) {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < count; i = next++) {
        const [target, init, status] = request(url, tags, i);
        const res = await fetch(target, { ...init, signal: AbortSignal.timeout(60_000) });
        await res.arrayBuffer();
        if (res.status !== status) throw new Error(`${values.mode} ${i}: status ${res.status}`);
      }
    }),
  );
}

/** Instructions in one callgrind dump file (its `summary:` line). */
const summaryOf = (file) => Number(/^summary: (\d+)/m.exec(readFileSync(file, 'utf8'))?.[1] ?? NaN);

async function side(tmp, upstream, redis, { name, cli, leash, floor = false }) {
  const out = join(tmp, `${name}.callgrind`);
  const wrap = ['valgrind', '--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${out}`];
  const wg = floor
    ? await startFloor({ tmp, name, upstreamUrl: upstream.url, wrap, readyTimeoutMs: 180_000 })
    : await startWriteguard({
        tmp,
        name,
        upstreamUrl: upstream.url,
        redisPort: redis?.port ?? null,
        leash,
        cli,
        wrap,
        readyTimeoutMs: 180_000,
      });
  try {
    const tag = `${name}-${Date.now().toString(36)}`;
    const replayKey = `${tag}-replay`;
    if (values.mode === 'post-replay' && !floor) await prime(wg.url, replayKey);
    await run(wg.url, WARM, { tag: `${tag}-w`, replayKey });
    execFileSync('callgrind_control', ['--zero', String(wg.entry.pid)], { stdio: 'ignore' });
    await run(wg.url, COUNT, { tag: `${tag}-m`, replayKey });
    execFileSync('callgrind_control', ['--dump=measured', String(wg.entry.pid)], { stdio: 'ignore' });
  } finally {
    await wg.stop();
  }
  // --separate-threads: one file per thread, `-01` the main thread; the measured dump is part 1.
  const dumps = readdirSync(tmp)
    .filter((f) => f.startsWith(`${name}.callgrind.1-`))
    .map((f) => join(tmp, f));
  const main = dumps.filter((f) => f.endsWith('-01')).map(summaryOf)[0];
  const all = dumps.map(summaryOf).reduce((a, b) => a + b, 0);
  if (!(main > 0)) throw new Error(`no main-thread dump for ${name} (${dumps.length} files)`);
  return { name, main: main / COUNT, helpers: (all - main) / COUNT };
}

const sides = values.floor
  ? [
      { name: 'fastify-floor', floor: true },
      { name: 'this-checkout', cli: LOCAL_CLI, leash: false },
    ]
  : values.base === undefined
    ? [
        { name: 'leash-off', cli: LOCAL_CLI, leash: false },
        { name: 'leash-on', cli: LOCAL_CLI, leash: true },
      ]
    : [
        { name: 'base', cli: join(resolve(values.base), 'cli.js'), leash: values.leash },
        { name: 'this-checkout', cli: LOCAL_CLI, leash: values.leash },
      ];

const tmp = mkdtempSync(join(tmpdir(), 'writeguard-instructions-'));
try {
  const upstream = await startUpstream(tmp, { core: CORE_LOAD });
  const redis = values.store === 'redis' ? await startRedis(tmp, { core: CORE_LOAD }) : null;
  const [a, b] = [await side(tmp, upstream, redis, sides[0]), await side(tmp, upstream, redis, sides[1])];
  await redis?.close();
  const k = (x) => `${(x / 1000).toFixed(0)}k`;
  const r = (x, y) => `${(y / x).toFixed(3)}×`;
  const lines = [
    `Instructions per request, ${values.mode} on the ${values.store} store${values.leash ? ', leash on' : ''} (callgrind; ${COUNT} counted after ${WARM} of warm-up, ${CONCURRENCY} at a time):`,
    '',
    '| writeguard | main thread | V8 helper threads | all |',
    '|---|--:|--:|--:|',
    ...[a, b].map((s) => `| ${s.name} | ${k(s.main)} | ${k(s.helpers)} | ${k(s.main + s.helpers)} |`),
    `| **${b.name} ÷ ${a.name}** | ${r(a.main, b.main)} | ${r(a.helpers, b.helpers)} | ${r(a.main + a.helpers, b.main + b.helpers)} |`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
