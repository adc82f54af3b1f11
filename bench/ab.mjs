// A/B of two builds of writeguard on Redis: the before and after of one change, side by side on one
// Redis and one upstream. Each round runs A B B A per workload, so a drift in the machine's speed falls
// on both sides alike; it prints the median CPU µs/req, req/s and Redis CPU µs/req of each side and the
// ratio B ÷ A. A is a baseline build (its dist directory), B is this checkout's dist.
//   git worktree add /tmp/base HEAD~1 && (cd /tmp/base && npm ci && npm run build)
//   npm run build && node bench/ab.mjs /tmp/base/dist --modes post-key,post-replay --rounds 2 [--leash]
// Loopback only; every run is bounded by the bench's own durations (BENCH_DURATION_SEC, default 5 s).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, startRedis, startUpstream, startWriteguard } from './contenders.mjs';
import { measure } from './load.mjs';
import { prime } from './phases.mjs';
import { median } from './report.mjs';
import { stopAll } from './lib/procs.mjs';
import { spec, WORKLOADS } from './workloads.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    modes: { type: 'string', default: 'get,post-key,post-replay' },
    rounds: { type: 'string', default: '2' },
    leash: { type: 'boolean' },
  },
});
if (positionals.length !== 1) {
  process.stderr.write('usage: node bench/ab.mjs BASELINE_DIST [--modes get,post-key,post-replay] [--rounds N] [--leash]\n');
  process.exit(2);
}
const builds = { A: join(resolve(positionals[0]), 'cli.js'), B: join(ROOT, 'dist/cli.js') };
const workloads = values.modes.split(',').map((mode) => {
  const wl = WORKLOADS.find((w) => w.mode === mode && (w.tool ?? 'autocannon') === 'autocannon');
  if (wl === undefined) throw new Error(`no throughput workload with mode ${mode}`);
  return wl;
});

/** One side's run of one workload: a fresh writeguard, measured, stopped. */
async function runOne(ctx, side, wl) {
  const wg = await startWriteguard({
    tmp: ctx.tmp,
    name: `wg-${side}`,
    upstreamUrl: ctx.upstream.url,
    redisPort: ctx.redis.port,
    leash: values.leash,
    cli: builds[side],
  });
  try {
    const extra = {};
    if (wl.mode === 'post-replay') {
      extra.replayKey = `ab-${randomUUID()}`;
      await prime(wg.url, extra.replayKey);
    }
    const r = await measure({
      tool: 'autocannon',
      spec: spec(wl, wg.url, extra),
      sutPids: wg.pids,
      redisPid: ctx.redis.entry.pid,
      upstreamCount: ctx.upstream.count,
    });
    const unexpected = r.non2xx + r.errors + r.timeouts;
    if (unexpected > 0) throw new Error(`${wl.mode}, ${side}: ${unexpected} answers other than 2xx (${JSON.stringify(r.statusCodes)})`);
    return { cpu: r.cpuUsPerReq, rps: r.total / r.durationSec, redis: r.redisCpuUsPerReq };
  } finally {
    await wg.stop();
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'wg-ab-'));
try {
  const ctx = { tmp, upstream: await startUpstream(tmp), redis: await startRedis(tmp) };
  const runs = new Map(workloads.map((wl) => [wl.mode, { A: [], B: [] }]));
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const wl of workloads) {
      for (const side of ['A', 'B', 'B', 'A']) {
        const r = await runOne(ctx, side, wl);
        runs.get(wl.mode)[side].push(r);
        process.stderr.write(`[ab] round ${round + 1}, ${wl.mode}, ${side}: ${r.cpu.toFixed(0)} µs CPU/req, ${r.rps.toFixed(0)} req/s\n`);
      }
    }
  }
  console.log(`A: ${positionals[0]}  B: this checkout's dist${values.leash ? '  (leash on)' : ''}`);
  console.log(
    '| workload | CPU µs/req A → B | B ÷ A | req/s A → B | B ÷ A | Redis CPU µs/req A → B | B ÷ A |\n|---|--:|--:|--:|--:|--:|--:|',
  );
  for (const [mode, { A, B }] of runs) {
    const cells = ['cpu', 'rps', 'redis'].map((k) => {
      const [a, b] = [median(A.map((r) => r[k] ?? 0)), median(B.map((r) => r[k] ?? 0))];
      return `${a.toFixed(1)} → ${b.toFixed(1)} | ${a > 0 ? `${(b / a).toFixed(2)}×` : '—'}`;
    });
    console.log(`| ${mode} | ${cells.join(' | ')} |`);
  }
  await ctx.redis.close();
} finally {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
}
