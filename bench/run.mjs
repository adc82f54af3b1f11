// `npm run bench`: writeguard's cost, measured side by side with the baselines (issue 6), written
// to bench/RESULTS.md. Everything it starts is pinned, bounded in time, and stopped by PID — on
// success, on failure, on Ctrl-C and when its own deadline passes.
//
// Env knobs (defaults keep the whole run under 15 minutes on 2 cores):
//   BENCH_ROUNDS=3  BENCH_WARMUP_SEC=2  BENCH_DURATION_SEC=5  BENCH_SEQ_SEC=5  BENCH_SOAK_SEC=150
//   BENCH_PROFILE=0 (skip the --cpu-prof phase)  BENCH_KEEP=1 (keep the temp dir: logs, configs, profiles)
//   BENCH_OUT=path (default bench/RESULTS.md)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CONTENDERS, ROOT, ensureNginx, startRedis, startUpstream } from './contenders.mjs';
import { killAllNow, pinning, rssMiB, stopAll } from './lib/procs.mjs';
import {
  alertsHang,
  inflightCheck,
  leashAtRate,
  profileMissed,
  redisRoundTrip,
  roundTrips,
  runRounds,
  soak,
  tracingExports,
} from './phases.mjs';
import { evaluateTargets, render } from './report.mjs';
import { cfg } from './workloads.mjs';

const OUT = process.env.BENCH_OUT ?? join(ROOT, 'bench/RESULTS.md');
const t0 = Date.now();
const log = (msg) => process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`);

// ---- cleanup on every way out --------------------------------------------------------------
let tmp = null;
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    await stopAll();
    if (tmp !== null && process.env.BENCH_KEEP !== '1') rmSync(tmp, { recursive: true, force: true });
    else if (tmp !== null) log(`kept the temp dir (BENCH_KEEP=1): ${tmp}`);
  })();
  return cleaning;
}
// 'exit' cannot wait: whatever is still running then is killed at once, by PID.
process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: stopping everything`);
    cleanup().finally(() => process.exit(130));
  });
}
setTimeout(() => {
  log('deadline reached: stopping everything');
  cleanup().finally(() => process.exit(1));
}, cfg.deadlineMs).unref();

// ---- facts about this run -------------------------------------------------------------------
function sh(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: ROOT });
  return r.status === 0 ? r.stdout.trim() : null;
}

function meta(nginx) {
  const cpuModel = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? 'unknown CPU';
  const nginxVersion = nginx.path ? spawnSync(nginx.path, ['-v'], { encoding: 'utf8' }).stderr.trim().replace('nginx version: ', '') : null;
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    commit: sh('git', ['rev-parse', '--short', 'HEAD']) ?? 'unknown',
    dirty: (sh('git', ['status', '--porcelain', '--', 'src', 'package.json', 'package-lock.json']) ?? '') !== '',
    nproc: pinning.cores,
    cpuModel,
    node: process.version,
    redis: (sh('redis-server', ['--version']) ?? 'redis-server ?').replace(/^Redis server v=(\S+).*/, 'redis-server $1'),
    nginx: nginxVersion ?? `nginx skipped (${nginx.skip})`,
    pinning: pinning.enabled
      ? 'load generator on core 0 (`taskset -c 0`); upstream, Redis and the system under test on core 1 (`taskset -c 1`)'
      : `none (${pinning.hasTaskset ? `${pinning.cores} core(s)` : 'taskset not found'}): numbers are noisier`,
  };
}

function caveats(results, skipped) {
  const list = [
    "Two cores: the load generator has core 0; the upstream, Redis and the system under test share core 1. Throughput of the proxies therefore includes the upstream's (and Redis') CPU on the same core; CPU µs/req of the SUT process is the cleaner comparison, and the steadier one on a noisy machine.",
    "For **direct** (and nginx), one autocannon process on one core may be the bottleneck rather than the server, and their req/s swing between runs: direct's req/s is a floor of the physical limit, not the limit itself — so the replay target, a ratio to direct, is the noisiest one.",
    'The machine runs other services (databases, brokers) that were idle but not stopped; medians over interleaved rounds damp their noise, they do not remove it.',
    'Each contender is configured as its users would (defaults): the bare proxy and the SET NX contender log nothing, writeguard logs one JSON line per response (to /dev/null here), nginx logs to /dev/null; nginx keeps its default `keepalive_requests` (1000 per connection).',
    "The fastify floor contender is not a product: fastify and undici with no logic at all (reads forwarded with undici's dispatch API, the answer buffered; POSTs answered with a stored 1 KiB body from memory, never forwarded). It measures what the stack itself costs: a target the floor cannot reach, writeguard cannot reach on this stack either.",
    'The SET NX contender stores only the status, not the answer: it cannot replay. writeguard stores the 1 KiB answer, fingerprints the request and fences every step.',
    'writeguard on the memory store keeps every record (with its stored answer) in its heap for `ttlSec` (a day): its RSS grows with every distinct key by design — see its RSS after each round — so the growth check applies to the Redis store. The memory store is for development only.',
    "The 200-in-flight check: writeguard's upstream pool (`connections: 128` in src/server.ts) lets 128 writes reach the upstream at once; the other 72 wait in writeguard, claimed — in flight for the agent, queued for the upstream — hence a p50 near 2 s with a 1 s upstream.",
    'Round trips are counted in a separate, sequential phase; lease renewals (every third of the lease) never fire here because the upstream answers in well under a second.',
    "Leash on: writeguard on Redis with one spend budget (limit 2^53 − 1, so it never refuses) and one intent (amount, currency, customer; `keyed: guard`). Every new write's body has its own `customer` (for every contender alike), so every write passes both checks: the row measures what checking and reserving cost, not what a refusal costs. It runs in the new-write workload only, to keep the run under 15 minutes. Its CPU target counts writeguard's own CPU and writeguard + Redis (the checks run in the begin script, in Redis): both must hold.",
  ];
  if (results.alertsHang) {
    const a = results.alertsHang;
    list.push(
      `Alerts to a hanging receiver: two more writeguards on Redis, started for this phase only, each with a budget no write fits (limit 1, bodies of 1250), so every new write is refused 403 limit_exceeded before the upstream — and, on the one with alerts, each refusal emits a \`limit_exceeded\` alert (default queue of 1000, 5 s delivery timeout). Its receiver is a loopback HTTP server on the server core that reads each request and never answers. The two run interleaved (A B B A, ${a.rounds} rounds, ${a.warmupSec} s warm-up + ${a.durationSec} s measured each, ${a.connections} connections); the warm-up fills the queue many times over, so the measured window is the steady state of a receiver that hangs: one delivery attempt waiting out its timeout (then backing off), the queue full, every new alert built and dropped (counted). Only writes that are refused, held or of unknown outcome emit alerts, so a refused write is the path alerting touches; it is short (the upstream is never called), so its req/s are not comparable to the workloads' above: the ratio of the two writeguards is what counts.`,
    );
  }
  if (results.tracing.sink !== null)
    list.push(
      `Tracing on: its CPU µs/req is writeguard's own (building, batching and exporting the spans, OTLP/HTTP JSON); the sink that receives them shares the server core but is not counted. It received ${results.tracing.sink.spans} spans in ${results.tracing.sink.requests} exports for ${results.tracing.writes} writes (warm-ups included). Tracing off is the writeguard-on-Redis contender: with no OTLP endpoint the SDK is not loaded at all (test/unit/observe/tracing.test.ts checks the imports), and a request pays a null check per hook.`,
    );
  if (skipped.nginx) list.push(`nginx was skipped: ${skipped.nginx}.`);
  if (results.meta.dirty)
    list.push('The work tree had uncommitted changes under src/ or in package.json when this ran: the commit alone does not reproduce it.');
  return list;
}

// ---- the run --------------------------------------------------------------------------------
async function main() {
  if (!existsSync(join(ROOT, 'dist/cli.js'))) throw new Error('dist/cli.js is missing: run `npm run build` first (npm run bench does)');
  tmp = mkdtempSync(join(tmpdir(), 'writeguard-bench-'));
  log(`pinning: ${pinning.enabled ? 'load on core 0, servers on core 1' : 'off'}`);
  const nginx = ensureNginx(log);
  const results = {
    meta: meta(nginx),
    cfg,
    workloads: [],
    anomalies: [],
    replayUpstreamPosts: {},
    rss: {},
    rssByRound: { 'wg-redis': [], 'wg-mem': [], 'wg-leash': [] },
    trips: null,
    tripsLeash: null,
    redisRtt: null,
    inflight: null,
    alertsHang: null,
    leashAtRate: null,
    tracing: { writes: 0, sink: null },
    soak: null,
    profiles: [],
    profilesLeftOut: [],
    caveats: [],
  };
  const upstream = await startUpstream(tmp);
  const redis = await startRedis(tmp);
  // Optional phases (profiles) must end by then: what is left is for writing the results and stopping.
  const ctx = { tmp, log, results, upstream, redis, deadlineAt: t0 + cfg.deadlineMs - 10_000 };

  // Every contender runs for the whole main phase (idle ones cost nothing), so rounds can interleave.
  const running = {};
  const skipped = {};
  const contenders = CONTENDERS.map((c) => ({ ...c, skipped: c.available?.({ nginx }) ?? null }));
  for (const c of contenders) {
    if (c.skipped !== null) {
      skipped[c.id] = c.skipped;
      log(`${c.id} skipped: ${c.skipped}`);
      continue;
    }
    running[c.id] = await c.start({ tmp, upstream, redis, nginx });
  }
  await sleep(1000);
  for (const c of contenders) {
    if (running[c.id]) results.rss[c.id] = { label: c.label, idle: running[c.id].pids().reduce((t, p) => t + rssMiB(p), 0), load: 0 };
  }
  log(`started: ${Object.keys(running).join(', ')}`);

  await runRounds(ctx, running, contenders);
  if (running['wg-leash']) {
    log('leash on against off at one offered rate (interleaved)');
    await leashAtRate(ctx, running);
  }
  log('counting Redis round trips (MONITOR)');
  await roundTrips(ctx, running['wg-redis'].url);
  if (running['wg-leash']) {
    log('counting Redis round trips of a new write with the leash on (MONITOR)');
    await roundTrips(ctx, running['wg-leash'].url, { leash: true });
  }
  // The contenders would only share the server core with the phases below.
  for (const c of Object.values(running)) await c.stop();
  if (running['wg-otel']) tracingExports(ctx, running['wg-otel'].exported());
  await redisRoundTrip(ctx);

  log('alerts: writes refused over budget, alerts to a hanging receiver against none (interleaved)');
  await alertsHang(ctx);

  log('memory check: 200 writes in flight');
  await inflightCheck(ctx);
  if (cfg.soakSec > 0) {
    log(`soak: ${cfg.soakSec} s of new writes on writeguard-Redis, RSS traced`);
    await soak(ctx);
  }

  results.targets = evaluateTargets(results);
  const missed = results.targets.filter((t) => !t.met).map((t) => t.target);
  if (cfg.profile && missed.length > 0) await profileMissed(ctx, missed);

  results.caveats = caveats(results, skipped);
  results.totalSec = (Date.now() - t0) / 1000;
  await redis.close();
  writeFileSync(OUT, render(results));
  log(`wrote ${OUT.startsWith(ROOT) ? OUT.slice(ROOT.length) : OUT} in ${(results.totalSec / 60).toFixed(1)} min`);
  if (results.anomalies.length > 0) log(`${results.anomalies.length} anomalies: see the results`);
}

try {
  await main();
  await cleanup();
  process.exit(0);
} catch (err) {
  log(`failed: ${err.stack ?? err}${err.cause ? `\n  cause: ${err.cause.stack ?? err.cause}` : ''}`);
  if (tmp !== null) log('the *.stderr.log files in the temp dir tell more (rerun with BENCH_KEEP=1 to keep them)');
  await cleanup();
  process.exit(1);
}
