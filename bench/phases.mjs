// The phases of a bench run. Each takes the run's context { tmp, log, results, upstream, redis }
// and adds what it measured to `results`, with an anomaly for anything that makes a number invalid.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { startFloor, startHangingReceiver, startRedis, startUpstream, startWriteguard } from './contenders.mjs';
import { measure } from './load.mjs';
import { CORE_LOAD, CORE_SUT, rssMiB, start, stop } from './lib/procs.mjs';
import { summarise } from './profile.mjs';
import { countRoundTrips, scriptTimes } from './redis-trips.mjs';
import { summariseRuns } from './report.mjs';
import { BODY, WORKLOADS, cfg, spec } from './workloads.mjs';

function noteUnexpected(results, where, r) {
  const unexpected = r.non2xx + r.errors + r.timeouts;
  if (unexpected > 0)
    results.anomalies.push(`${where}: ${r.non2xx} non-2xx ${JSON.stringify(r.statusCodes)}, ${r.errors} errors, ${r.timeouts} timeouts`);
  return unexpected;
}

/** Sends BODY once under `key`: every later request with that key is a replay. */
export async function prime(url, key) {
  const res = await fetch(`${url}/v1/payments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': key },
    body: BODY,
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`priming replay key answered ${res.status}`);
}

/** One contender under one workload, with the checks that make the run valid. */
async function runOne(ctx, { wl, id, sut, round }) {
  const { results, upstream, redis } = ctx;
  const extra = {};
  let before = null;
  if (wl.mode === 'post-replay') {
    extra.replayKey = `bench-replay-${id}-${round}-${randomUUID()}`;
    await prime(sut.url, extra.replayKey);
    before = await upstream.count(); // taken before the warm-up: the replay check covers it too
  }
  // A traced contender's writes, warm-up included: each is one POST upstream and two spans exported.
  const tracedFrom = sut.exported === undefined ? null : (await upstream.count()).post;
  const r = await measure({
    tool: wl.tool ?? 'autocannon',
    spec: spec(wl, sut.url, extra),
    sutPids: sut.pids,
    redisPid: sut.redisPid ?? null,
    redisCalls: id === 'wg-redis' || id === 'wg-leash' ? redis.calls : undefined,
    upstreamCount: upstream.count,
  });
  if (tracedFrom !== null) results.tracing.writes += (await upstream.count()).post - tracedFrom;
  const where = `round ${round + 1}, ${wl.id}, ${id}`;
  const unexpected = noteUnexpected(results, where, r);
  if (wl.mode === 'post-replay') {
    const posts = (await upstream.count()).post - before.post;
    results.replayUpstreamPosts[id] = (results.replayUpstreamPosts[id] ?? 0) + posts;
    if (posts !== 0) results.anomalies.push(`${where}: the upstream received ${posts} POSTs during a replay run (must be 0)`);
  } else if (id !== 'direct' && wl.mode !== 'get' && r.upstreamPosts < r.total - unexpected) {
    results.anomalies.push(
      `${where}: ${r.total} answers but only ${r.upstreamPosts} POSTs reached the upstream (writes replayed or lost?)`,
    );
  }
  ctx.log(
    `${where}: ${Math.round(r.rps)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${r.cpuUsPerReq?.toFixed(0)} µs CPU/req${unexpected ? `, ${unexpected} UNEXPECTED` : ''}`,
  );
  return r;
}

/**
 * Every workload, every contender, `cfg.rounds` times. The order rotates each round, so drift
 * (a noisy neighbour, a warming cache) spreads over everyone rather than landing on one.
 */
export async function runRounds(ctx, running, contenders) {
  const { results } = ctx;
  const runs = Object.fromEntries(WORKLOADS.map((wl) => [wl.id, Object.fromEntries(wl.contenders.map((c) => [c, []]))]));
  for (let round = 0; round < cfg.rounds; round++) {
    for (const wl of WORKLOADS) {
      const order = wl.contenders.filter((c) => running[c]);
      for (const id of order.map((_, i) => order[(i + round) % order.length])) {
        const r = await runOne(ctx, { wl, id, sut: running[id], round });
        runs[wl.id][id].push(r);
        results.rss[id].load = Math.max(results.rss[id].load, r.rssLoadMiB);
      }
    }
    await sleep(500);
    for (const id of Object.keys(results.rssByRound)) if (running[id]) results.rssByRound[id].push(rssMiB(running[id].pids()[0]));
  }
  const byId = Object.fromEntries(contenders.map((c) => [c.id, c]));
  results.workloads = WORKLOADS.map((wl) => ({
    ...wl,
    contenders: wl.contenders.map((id) =>
      running[id]
        ? { id, label: byId[id].label, runs: runs[wl.id][id], summary: summariseRuns(runs[wl.id][id]) }
        : { id, label: byId[id].label, runs: [], summary: null, skip: byId[id].skipped },
    ),
  }));
}

/**
 * Redis round trips per request type, on a running writeguard-on-Redis: into `results.trips`, or —
 * with `leash` (writeguard with the leash on; new writes only) — into `results.tripsLeash`.
 */
export async function roundTrips(ctx, url, { leash = false } = {}) {
  const { results } = ctx;
  const trips = await countRoundTrips({
    redis: ctx.redis,
    url,
    upstream: ctx.upstream,
    n: cfg.tripsPerType,
    only: leash ? ['new'] : null,
  });
  const where = leash ? 'round trips (leash on)' : 'round trips';
  for (const t of trips) {
    const expected = t.id === 'replay' ? 0 : t.n;
    if (t.upstreamRequests !== expected)
      results.anomalies.push(`${where}, ${t.id}: the upstream saw ${t.upstreamRequests} requests (expected ${expected})`);
    if (Object.keys(t.statuses).some((s) => !s.startsWith('2')))
      results.anomalies.push(`${where}, ${t.id}: answers ${JSON.stringify(t.statuses)}`);
  }
  const times = await scriptTimes({ redis: ctx.redis, url, n: cfg.tripsPerType });
  if (leash) [results.tripsLeash, results.scriptTimesLeash] = [trips, times];
  else [results.trips, results.scriptTimes] = [trips, times];
}

/**
 * The tracing-on contender, once it has stopped (its shutdown exports the last spans): what its sink
 * received against the two spans (request, attempt) each of its writes makes. Fewer means spans were
 * dropped (the SDK's queue was full), so its numbers leave out the cost of exporting them.
 */
export function tracingExports(ctx, exported) {
  const { tracing } = ctx.results;
  tracing.sink = exported;
  const expected = 2 * tracing.writes;
  if (exported === null || exported.spans !== expected)
    ctx.results.anomalies.push(
      `tracing on: the sink received ${exported?.spans ?? 'no'} spans for ${tracing.writes} writes (expected ${expected}: a request span and an attempt span each)`,
    );
  ctx.log(`tracing on: ${tracing.writes} writes, sink received ${exported?.spans} spans in ${exported?.requests} exports`);
}

/** A single Redis round trip from the server core, one at a time (bench/redis-rtt.mjs). */
export async function redisRoundTrip(ctx, seconds = 3) {
  const entry = start(
    'redis-rtt',
    'node',
    [fileURLToPath(new URL('./redis-rtt.mjs', import.meta.url)), JSON.stringify({ port: ctx.redis.port, seconds })],
    {
      core: CORE_SUT,
      stdout: 'pipe',
      stderr: join(ctx.tmp, 'redis-rtt.stderr.log'),
    },
  );
  let out = '';
  entry.child.stdout.on('data', (c) => (out += c));
  const timer = setTimeout(() => stop(entry), (seconds + 30) * 1000);
  const { code } = await entry.exit;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`the Redis round-trip client exited with ${code}`);
  ctx.results.redisRtt = JSON.parse(out);
  ctx.log(`Redis round trip, one at a time: p50 ${ctx.results.redisRtt.p50.toFixed(3)} ms, p99 ${ctx.results.redisRtt.p99.toFixed(3)} ms`);
}

/** RSS of writeguard on Redis with 200 writes in flight (an upstream that takes a second per POST). */
export async function inflightCheck(ctx) {
  const f = cfg.inflight;
  const slow = await startUpstream(ctx.tmp, { name: 'upstream-slow', postDelayMs: f.postDelayMs });
  try {
    const wg = await startWriteguard({ tmp: ctx.tmp, name: 'wg-inflight', upstreamUrl: slow.url, redisPort: ctx.redis.port });
    try {
      await sleep(1000);
      const rssIdleMiB = rssMiB(wg.entry.pid);
      const r = await measure({
        tool: 'autocannon',
        spec: { url: wg.url, mode: 'post-key', connections: f.connections, warmupSec: f.warmupSec, durationSec: f.durationSec },
        sutPids: wg.pids,
        redisPid: null,
        upstreamCount: slow.count,
      });
      const unexpected = noteUnexpected(ctx.results, 'in-flight memory check', r);
      ctx.results.inflight = {
        ...f,
        rssIdleMiB,
        rssMaxMiB: r.rssLoadMiB,
        rssAfterMiB: r.rssAfterMiB,
        rps: r.rps,
        p50: r.p50,
        p99: r.p99,
        unexpected,
      };
      ctx.log(`in flight: RSS max ${r.rssLoadMiB.toFixed(1)} MiB, ${Math.round(r.rps)} req/s, p50 ${r.p50} ms`);
    } finally {
      await wg.stop();
    }
  } finally {
    await stop(slow.entry);
  }
}

/** writeguard's alert counters (admin /metrics), summed over event types: { delivered, failed, dropped }. */
async function alertCounters(adminUrl) {
  const res = await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${adminUrl}/metrics answered ${res.status}`);
  const out = { delivered: 0, failed: 0, dropped: 0 };
  for (const m of text.matchAll(/^writeguard_alerts_(delivered|failed|dropped)_total(?:\{[^}]*\})?\s+(\S+)$/gm)) out[m[1]] += Number(m[2]);
  return out;
}

/**
 * "A receiver that hangs does not slow the agent's requests": two writeguards on Redis, side by
 * side, each refusing every new write with 403 limit_exceeded (a budget of 1, bodies of 1250) — one
 * with alerts to a receiver that reads each request and never answers (every refusal an alert), one
 * without alerts. Interleaved A B B A (`cfg.alertsHang.rounds`); req/s and CPU µs/req of each. The
 * run is valid only if every answer was a 403, nothing reached the upstream, and the receiver got
 * requests and answered none (its own count, and writeguard's: no alert delivered).
 */
export async function alertsHang(ctx) {
  const { results, log } = ctx;
  const a = cfg.alertsHang;
  const t0 = Date.now();
  const problems = [];
  const runs = { hang: [], off: [] };
  const unexpectedOf = { hang: 0, off: 0 };
  const sides = {};
  let receiverCount;
  const counters = {};
  const receiver = await startHangingReceiver(ctx.tmp);
  try {
    const common = { tmp: ctx.tmp, upstreamUrl: ctx.upstream.url, redisPort: ctx.redis.port, refuseAll: true };
    sides.hang = await startWriteguard({ ...common, name: 'wg-alerts-hang', alertsUrl: `${receiver.url}/hook` });
    sides.off = await startWriteguard({ ...common, name: 'wg-alerts-off' });
    for (let round = 0; round < a.rounds; round++) {
      for (const id of round % 2 === 0 ? ['hang', 'off'] : ['off', 'hang']) {
        const sut = sides[id];
        const r = await measure({
          tool: 'autocannon',
          spec: { url: sut.url, mode: 'post-key', connections: cfg.connections, warmupSec: a.warmupSec, durationSec: a.durationSec },
          sutPids: sut.pids,
          redisPid: ctx.redis.entry.pid,
          upstreamCount: ctx.upstream.count,
        });
        const where = `alerts phase, round ${round + 1}, ${id === 'hang' ? 'alerts to a hanging receiver' : 'no alerts'}`;
        // Every answer must be the refusal: anything else measures another path.
        const refused = r.statusCodes['403'] ?? 0;
        const unexpected = r.total - refused + r.errors + r.timeouts;
        unexpectedOf[id] += unexpected;
        if (unexpected > 0 || r.total === 0)
          problems.push(
            `${where}: ${r.total} answers, ${refused} of them 403 ${JSON.stringify(r.statusCodes)}, ${r.errors} errors, ${r.timeouts} timeouts`,
          );
        if (r.upstreamPosts !== 0) problems.push(`${where}: ${r.upstreamPosts} POSTs reached the upstream (every write must be refused)`);
        runs[id].push(r);
        log(
          `${where}: ${Math.round(r.rps)} req/s, p50 ${r.p50.toFixed(2)} ms, ${r.cpuUsPerReq?.toFixed(0)} µs CPU/req${unexpected ? `, ${unexpected} UNEXPECTED` : ''}`,
        );
      }
    }
    receiverCount = await receiver.count();
    counters.hang = await alertCounters(sides.hang.adminUrl);
    counters.off = await alertCounters(sides.off.adminUrl);
  } finally {
    // Both at once: the one with alerts spends up to 2 s flushing to a receiver that never answers.
    await Promise.all(Object.values(sides).map((s) => s.stop()));
    await stop(receiver.entry);
  }
  // Did the receiver really hang? Its own count, and writeguard's.
  if (receiverCount.received < 1) problems.push('alerts phase: the hanging receiver received no request (were alerts sent at all?)');
  if (receiverCount.answered !== 0) problems.push(`alerts phase: the "hanging" receiver answered ${receiverCount.answered} requests`);
  if (counters.hang.delivered !== 0)
    problems.push(`alerts phase: writeguard counted ${counters.hang.delivered} alerts delivered to a receiver that never answers`);
  if (counters.hang.dropped === 0)
    problems.push('alerts phase: no alert dropped — the queue (1000) never filled, so the refusals did not all emit alerts?');
  results.anomalies.push(...problems);
  results.alertsHang = {
    ...a,
    connections: cfg.connections,
    runs,
    summary: { hang: summariseRuns(runs.hang), off: summariseRuns(runs.off) },
    unexpected: unexpectedOf,
    receiver: receiverCount,
    counters,
    problems,
    valid: problems.length === 0,
    phaseSec: (Date.now() - t0) / 1000,
  };
  log(
    `alerts phase: receiver got ${receiverCount.received} requests, answered ${receiverCount.answered}; alerts dropped ${counters.hang.dropped}, delivered ${counters.hang.delivered}; took ${results.alertsHang.phaseSec.toFixed(1)} s`,
  );
}

/**
 * Leash on against off at one offered rate. Run flat out, the side that does more Redis work per
 * write (leash on: its begin checks and reserves the budget and intent) answers fewer requests per
 * second, so fewer requests share each syscall and every request costs more CPU — on both processes,
 * Redis sharing the server core. At one rate, below both sides' capacity, CPU per write compares the
 * work itself. The rate is `share` of leash-on's median saturated req/s from the main rounds.
 */
export async function leashAtRate(ctx, running) {
  const { results, log } = ctx;
  const a = cfg.leashAtRate;
  const saturated = results.workloads.find((w) => w.id === 'post-key')?.contenders.find((c) => c.id === 'wg-leash')?.summary?.rps;
  if (!running['wg-leash'] || !running['wg-redis'] || !(saturated > 0)) return;
  const rate = Math.max(50, Math.round((saturated * a.share) / 50) * 50);
  const runs = { on: [], off: [] };
  const sides = { on: running['wg-leash'], off: running['wg-redis'] };
  for (let round = 0; round < a.rounds; round++) {
    for (const id of round % 2 === 0 ? ['on', 'off', 'off', 'on'] : ['off', 'on', 'on', 'off']) {
      const sut = sides[id];
      const r = await measure({
        tool: 'autocannon',
        spec: { url: sut.url, mode: 'post-key', connections: cfg.connections, warmupSec: a.warmupSec, durationSec: a.durationSec, rate },
        sutPids: sut.pids,
        redisPid: ctx.redis.entry.pid,
        upstreamCount: ctx.upstream.count,
      });
      const bad = r.non2xx + r.errors + r.timeouts;
      if (bad > 0) results.anomalies.push(`leash at ${rate} req/s, round ${round + 1}, leash ${id}: ${bad} answers not 2xx or failed`);
      runs[id].push(r);
      log(`leash at ${rate} req/s, round ${round + 1}, leash ${id}: ${Math.round(r.rps)} req/s, ${r.cpuUsPerReq?.toFixed(0)} µs CPU/req`);
    }
  }
  results.leashAtRate = {
    ...a,
    rate,
    saturated,
    connections: cfg.connections,
    runs,
    summary: { on: summariseRuns(runs.on), off: summariseRuns(runs.off) },
  };
}

/** When the soak's first live-heap reading is taken: the replay cache (32 MiB) has long been full. */
const SOAK_HEAP_FIRST_SEC = 60;

/** New writes on Redis for `cfg.soakSec`, RSS sampled throughout: does it settle or climb? */
export async function soak(ctx) {
  const heapProbe = join(ctx.tmp, 'soak-heap.jsonl');
  const wg = await startWriteguard({ tmp: ctx.tmp, name: 'wg-soak', upstreamUrl: ctx.upstream.url, redisPort: ctx.redis.port, heapProbe });
  // The live heap after a full collection (bench/lib/heap-probe.mjs), once the replay cache is full and
  // at the end: a leak grows it, V8 keeping more heap reserved under load does not.
  const probeHeap = () => process.kill(wg.entry.pid, 'SIGWINCH');
  try {
    await sleep(1000);
    const rssIdleMiB = rssMiB(wg.entry.pid);
    const r = await measure({
      tool: 'autocannon',
      spec: { url: wg.url, mode: 'post-key', connections: cfg.connections, warmupSec: cfg.warmupSec, durationSec: cfg.soakSec },
      sutPids: wg.pids,
      redisPid: ctx.redis.entry.pid,
      upstreamCount: ctx.upstream.count,
      traceRss: true,
      marks: [{ at: SOAK_HEAP_FIRST_SEC, run: probeHeap }],
    });
    probeHeap();
    await sleep(1000);
    const heap = readFileSync(heapProbe, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    const unexpected = noteUnexpected(ctx.results, 'soak', r);
    ctx.results.soak = {
      durationSec: r.durationSec,
      total: r.total,
      rps: r.rps,
      cpuUsPerReq: r.cpuUsPerReq,
      rssIdleMiB,
      rssMaxMiB: r.rssLoadMiB,
      trace: r.rssTrace,
      heap: heap.length === 2 ? { firstAtSec: SOAK_HEAP_FIRST_SEC, first: heap[0], last: heap[1] } : null,
      unexpected,
    };
    ctx.log(`soak: ${r.total} writes, ${Math.round(r.rps)} req/s, RSS max ${r.rssLoadMiB.toFixed(1)} MiB`);
  } finally {
    await wg.stop();
  }
}

/**
 * Runs writeguard on Redis (or, with `floor`, the fastify floor) under --cpu-prof for one workload
 * and summarises the measured window. Here the profiled process has the server core to itself (its
 * upstream and Redis sit on the load core): V8 samples by wall clock, so a Redis or upstream running
 * on the same core while it waits in a send() would be charged to that send.
 */
async function profileWorkload(ctx, { wl, title, upstream, redis, floor = false }) {
  const name = `${floor ? 'floor' : 'wg'}-prof-${wl.id}`;
  const dir = join(ctx.tmp, name);
  mkdirSync(dir, { recursive: true });
  const sut = floor
    ? await startFloor({ tmp: ctx.tmp, name, upstreamUrl: upstream.url, cpuProfDir: dir })
    : await startWriteguard({ tmp: ctx.tmp, name, upstreamUrl: upstream.url, redisPort: redis.port, cpuProfDir: dir });
  let r;
  try {
    const extra = {};
    if (wl.mode === 'post-replay') {
      extra.replayKey = `bench-prof-${randomUUID()}`;
      await prime(sut.url, extra.replayKey);
    }
    r = await measure({
      tool: 'autocannon',
      spec: spec(wl, sut.url, extra),
      sutPids: sut.pids,
      redisPid: null,
      upstreamCount: upstream.count,
    });
  } finally {
    await sut.stop(); // SIGTERM: a graceful exit, which is when V8 writes the profile
  }
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error(`no .cpuprofile written for ${name}`);
  ctx.log(`profiled ${name}: ${Math.round(r.rps)} req/s, ${r.cpuUsPerReq?.toFixed(0)} µs CPU/req under the profiler`);
  const summary = summarise(join(dir, file), { fromUs: r.windowStartUs, toUs: r.windowEndUs });
  return { id: wl.id, title, rps: r.rps, total: r.total, cpuUsPerReq: r.cpuUsPerReq, summary };
}

/** One profiled run: start, warm-up, the measured window, then the graceful stop that writes the profile. */
const PROFILE_SEC = cfg.warmupSec + cfg.durationSec + 4;

/** A profile for each workload behind a missed target, as many as fit before `ctx.deadlineAt`. */
export async function profileMissed(ctx, missed) {
  // The leash targets compare two writeguards: a profile of the one without the leash is no evidence.
  // So does the alerts target (two writeguards refusing every write): neither is a workload's profile.
  missed = missed.filter((t) => !t.startsWith('Leash on') && !t.startsWith('Alerts'));
  // Replays first: their profile, against the floor's, is the one the README's analysis rests on; what
  // the deadline leaves out comes last.
  const wanted = [];
  if (missed.some((t) => t.startsWith('Replays') || t.includes('replay'))) wanted.push(['post-replay', 'Replays, writeguard on Redis']);
  if (missed.some((t) => t.startsWith('New writes') || t.startsWith('One connection') || t.includes('new write')))
    wanted.push(['post-key', 'New writes (unique key), writeguard on Redis']);
  if (missed.some((t) => t.startsWith('Reads'))) wanted.push(['get', 'Reads (GET), writeguard on Redis']);
  if (wanted.length === 0) return;
  const upstream = await startUpstream(ctx.tmp, { name: 'upstream-prof', core: CORE_LOAD });
  try {
    const redis = await startRedis(ctx.tmp, { name: 'redis-prof', core: CORE_LOAD });
    try {
      for (const [id, title] of wanted) {
        const wl = WORKLOADS.find((w) => w.id === id);
        // Evidence, not results: a profile that would not end before the bench's deadline is left out, and said so.
        const needMs = (wl.contenders.includes('floor') ? 2 : 1) * PROFILE_SEC * 1000;
        if (Date.now() + needMs > ctx.deadlineAt) {
          ctx.log(`profile of ${id} left out: it would not end before the deadline`);
          ctx.results.profilesLeftOut.push(title);
          continue;
        }
        ctx.log(`profiling ${id} (a target was missed)`);
        const profile = await profileWorkload(ctx, { wl, title, upstream, redis });
        // Where the floor runs the same workload, its profile shows what writeguard adds, by package.
        if (wl.contenders.includes('floor')) profile.floor = await profileWorkload(ctx, { wl, title, upstream, redis, floor: true });
        ctx.results.profiles.push(profile);
      }
    } finally {
      await redis.close();
    }
  } finally {
    await stop(upstream.entry);
  }
}
