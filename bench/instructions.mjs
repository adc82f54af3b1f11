// Instructions per new write, counted by valgrind's callgrind: what a write costs writeguard's
// process, independent of the machine's speed. CPU time on a shared machine moved by 30-50% between
// runs minutes apart; an instruction count for the same build and load is repeatable. It covers user
// space only (system calls count as the instructions that make them, not the kernel's), so it compares
// configurations that make the same system calls per write: leash off against leash on.
//
// writeguard runs under callgrind (about 50 times slower) on the server core, its upstream and Redis
// on the load core. After `--warm` writes the counters are zeroed, `--writes` more are counted, then
// dumped per thread: the main thread (the event loop: what a request costs) apart from V8's helper
// threads (concurrent compilation and GC, which a longer warm-up shrinks).
//   npm run build && node bench/instructions.mjs [--warm 3000] [--writes 2000]
// Takes about 3 minutes per side. Loopback only; bounded by its counts and each request's timeout.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedis, startUpstream, startWriteguard } from './contenders.mjs';
import { CORE_LOAD, stopAll } from './lib/procs.mjs';
import { uniqueBody } from './workloads.mjs';

const { values } = parseArgs({ options: { warm: { type: 'string', default: '3000' }, writes: { type: 'string', default: '2000' } } });
const [WARM, WRITES] = [Number(values.warm), Number(values.writes)];
const CONCURRENCY = 8;

/** `count` new writes (a new key and body each, as the bench's post-key load), CONCURRENCY at a time; every one must be 201. */
async function writes(url, count, tag) {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < count; i = next++) {
        const res = await fetch(`${url}/v1/payments`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': `${tag}-${i}` },
          body: uniqueBody(tag, i),
          signal: AbortSignal.timeout(60_000),
        });
        await res.arrayBuffer();
        if (res.status !== 201) throw new Error(`write ${i}: status ${res.status}`);
      }
    }),
  );
}

/** Instructions in one callgrind dump file (its `summary:` line). */
const summaryOf = (file) => Number(/^summary: (\d+)/m.exec(readFileSync(file, 'utf8'))?.[1] ?? NaN);

async function side(tmp, upstream, redis, leash) {
  const name = leash ? 'leash-on' : 'leash-off';
  const out = join(tmp, `${name}.callgrind`);
  const wg = await startWriteguard({
    tmp,
    name,
    upstreamUrl: upstream.url,
    redisPort: redis.port,
    leash,
    wrap: ['valgrind', '--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${out}`],
    readyTimeoutMs: 180_000,
  });
  try {
    const tag = `${name}-${Date.now().toString(36)}`;
    await writes(wg.url, WARM, `${tag}-w`);
    execFileSync('callgrind_control', ['--zero', String(wg.entry.pid)], { stdio: 'ignore' });
    await writes(wg.url, WRITES, `${tag}-m`);
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
  return { name, main: main / WRITES, helpers: (all - main) / WRITES };
}

const tmp = mkdtempSync(join(tmpdir(), 'writeguard-instructions-'));
try {
  const upstream = await startUpstream(tmp, { core: CORE_LOAD });
  const redis = await startRedis(tmp, { core: CORE_LOAD });
  const off = await side(tmp, upstream, redis, false);
  const on = await side(tmp, upstream, redis, true);
  await redis.close();
  const k = (x) => `${(x / 1000).toFixed(0)}k`;
  const lines = [
    `Instructions per new write (callgrind; ${WRITES} writes counted after ${WARM} of warm-up, ${CONCURRENCY} at a time):`,
    '',
    '| writeguard on Redis | main thread | V8 helper threads | all |',
    '|---|--:|--:|--:|',
    ...[off, on].map((s) => `| ${s.name} | ${k(s.main)} | ${k(s.helpers)} | ${k(s.main + s.helpers)} |`),
    `| **on ÷ off** | ${(on.main / off.main).toFixed(2)}× | ${(on.helpers / off.helpers).toFixed(2)}× | ${((on.main + on.helpers) / (off.main + off.helpers)).toFixed(2)}× |`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
