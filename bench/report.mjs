// From measured runs to bench/RESULTS.md: medians over rounds, ratios to the baselines, the
// targets of issue 18 (and issue 6's that still stand) judged met or missed, and the profile evidence when one is missed.

export const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
};

/** Medians of each metric over a contender's runs (RSS under load: the largest seen). */
export function summariseRuns(runs) {
  const m = (k) => median(runs.map((r) => r[k]));
  return {
    rps: m('rps'),
    p50: m('p50'),
    p99: m('p99'),
    cpuUsPerReq: m('cpuUsPerReq'),
    redisCpuUsPerReq: m('redisCpuUsPerReq'),
    cpuBusy: m('cpuBusy'),
    rssLoadMiB: Math.max(...runs.map((r) => r.rssLoadMiB)),
    unexpected: runs.reduce((t, r) => t + r.non2xx + r.errors + r.timeouts, 0),
    rounds: runs.length,
  };
}

const ratio = (a, b) => (a === null || b === null || a === undefined || b === undefined || b === 0 ? null : a / b);
const fx = (x, d = 2) => (x === null || x === undefined ? '—' : x.toFixed(d));
const signed = (x, d = 3) => (x === null || x === undefined ? '—' : `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(d)}`);
const fr = (x) => (x === null ? '—' : `${x.toFixed(2)}×`);
const fint = (x) => (x === null || x === undefined ? '—' : Math.round(x).toLocaleString('en-US'));

const find = (wl, id) => wl?.contenders.find((c) => c.id === id)?.summary ?? null;

/**
 * The targets, each with the measured value and met / missed: issue 18's ratios (a write path close to
 * its measured floor), and issue 6's round trips, alerts and memory, which still stand.
 */
export function evaluateTargets(r) {
  const w = Object.fromEntries(r.workloads.map((x) => [x.id, x]));
  const out = [];
  const add = (target, measured, met, note = '') => out.push({ target, measured, met, note });

  const trips = Object.fromEntries((r.trips ?? []).map((t) => [t.id, t.roundTripsPerReq]));
  if (r.trips) {
    add('Redis round trips: 0 for a read', fx(trips.read), trips.read === 0);
    add('Redis round trips: 3 for a new write (begin, markSent, finish)', fx(trips.new), Math.abs(trips.new - 3) < 0.005);
    add("Redis round trips: 0 for a hot replay (the completed record is in the instance's cache)", fx(trips.replay), trips.replay === 0);
  }
  for (const [id, label] of [
    ['wg-redis', 'Redis'],
    ['wg-mem', 'memory'],
  ]) {
    const x = ratio(find(w.get, id)?.rps, find(w.get, 'bare')?.rps);
    const cpu = ratio(find(w.get, 'bare')?.cpuUsPerReq, find(w.get, id)?.cpuUsPerReq);
    add(
      `Reads (${label} store): ≥ 1.15× bare @fastify/http-proxy req/s`,
      `${fr(x)} (by CPU/req: ${fr(cpu)})`,
      x !== null && x >= 1.15,
      notes(
        floorNote(w.get, find(w.get, 'bare'), 'bare'),
        cpuNeeded(x, 1.15, find(w.get, id)?.cpuUsPerReq, find(w.get, 'floor')?.cpuUsPerReq),
      ),
    );
  }
  {
    const x = ratio(find(w['post-key'], 'wg-redis')?.rps, find(w['post-key'], 'setnx')?.rps);
    const cpu = ratio(find(w['post-key'], 'setnx')?.cpuUsPerReq, find(w['post-key'], 'wg-redis')?.cpuUsPerReq);
    add(
      'New writes on Redis: ≥ 0.75× bare proxy + SET NX/SET req/s',
      `${fr(x)} (by CPU/req: ${fr(cpu)})`,
      x !== null && x >= 0.75,
      cpuNeeded(x, 0.75, find(w['post-key'], 'wg-redis')?.cpuUsPerReq),
    );
    // What one shared Redis can serve for a fleet: its CPU per write against the minimal proxy's two commands.
    const setnx = find(w['post-key'], 'setnx')?.redisCpuUsPerReq;
    const ours = find(w['post-key'], 'wg-redis')?.redisCpuUsPerReq;
    const redisX = ratio(ours, setnx);
    add(
      "New writes on Redis: Redis CPU per write ≤ 2× the SET NX proxy's",
      `${fr(redisX)} (${fx(ours, 0)} vs ${fx(setnx, 0)} µs per write)`,
      redisX !== null && redisX <= 2,
      redisX !== null && redisX > 2
        ? `to meet it: at most ${fx(2 * setnx, 0)} µs of Redis CPU per write (${signed(2 * setnx - ours, 0)})`
        : '',
    );
  }
  if (r.trips) {
    // The leash's checks run inside the begin script: a new write must make no extra round trip.
    const off = r.trips.find((t) => t.id === 'new');
    const on = (r.tripsLeash ?? []).find((t) => t.id === 'new');
    const work = (t) => (t ? Object.values(t.commandstatsPerReq).reduce((a, b) => a + b, 0) : null);
    add(
      'Leash on: same round trips per new write as off',
      `${fx(on?.roundTripsPerReq)} on, ${fx(off?.roundTripsPerReq)} off`,
      on !== undefined && off !== undefined && Math.abs(on.roundTripsPerReq - off.roundTripsPerReq) < 0.005,
      on && off
        ? `Redis commands run per new write (commandstats, script-internal included): ${fx(work(on))} on, ${fx(work(off))} off`
        : '',
    );
  }
  if (w['post-key']?.contenders.some((c) => c.id === 'wg-leash')) {
    const [off, on] = [find(w['post-key'], 'wg-redis'), find(w['post-key'], 'wg-leash')];
    const at = r.leashAtRate;
    const [atOn, atOff] = at ? [at.summary.on, at.summary.off] : [null, null];
    const x = ratio(atOn?.cpuUsPerReq, atOff?.cpuUsPerReq);
    // The leash's work is done in Redis (the begin script): its CPU counts too, so both must hold.
    const withRedis = ratio(cpuWithRedis(atOn), cpuWithRedis(atOff));
    // A side that fell short of the rate would bring back the flat-out comparison's bias.
    const kept = at !== null && [atOn, atOff].every((s) => s !== null && s.rps >= 0.95 * at.rate);
    add(
      'Leash on: CPU µs per new write ≤ 1.2× off (both at one offered rate)',
      at
        ? `at ${fint(at.rate)} req/s: writeguard ${fr(x)} (${fx(atOn.cpuUsPerReq, 0)} vs ${fx(atOff.cpuUsPerReq, 0)} µs); writeguard + Redis ${fr(withRedis)} (${fx(cpuWithRedis(atOn), 0)} vs ${fx(cpuWithRedis(atOff), 0)} µs)`
        : 'not measured',
      kept && x !== null && withRedis !== null && x <= 1.2 && withRedis <= 1.2,
      [
        'both must be ≤ 1.2×',
        at ? `req/s held: ${fint(atOn.rps)} on, ${fint(atOff.rps)} off${kept ? '' : ' — short of the rate: not comparable'}` : '',
        at ? `per pair, writeguard: ${pairedRatios(runsAsWorkload(at), 'on', 'off', (run) => run.cpuUsPerReq)}` : '',
        `flat out (each as fast as it answers): writeguard ${fr(ratio(on?.cpuUsPerReq, off?.cpuUsPerReq))}, + Redis ${fr(ratio(cpuWithRedis(on), cpuWithRedis(off)))}, at ${fr(ratio(on?.rps, off?.rps))} the req/s`,
      ]
        .filter(Boolean)
        .join('; '),
    );
  }
  for (const [id, label] of [
    ['wg-redis', 'Redis'],
    ['wg-mem', 'memory'],
  ]) {
    const x = ratio(find(w['post-replay'], id)?.rps, find(w['post-key'], 'direct')?.rps);
    const untouched = (r.replayUpstreamPosts ?? {})[id] === 0;
    add(
      `Replays (${label} store): ≥ 0.60× direct write req/s, upstream untouched`,
      `${fr(x)}; upstream requests during replay runs: ${(r.replayUpstreamPosts ?? {})[id] ?? '—'}`,
      x !== null && x >= 0.6 && untouched,
      notes(
        floorNote(w['post-replay'], find(w['post-key'], 'direct'), 'direct writes'),
        cpuNeeded(x, 0.6, find(w['post-replay'], id)?.cpuUsPerReq, find(w['post-replay'], 'floor')?.cpuUsPerReq),
      ),
    );
  }
  {
    const d = find(w['seq-write'], 'direct');
    const g = find(w['seq-write'], 'wg-redis');
    const a50 = d && g ? g.p50 - d.p50 : null;
    const a99 = d && g ? g.p99 - d.p99 : null;
    const b = find(w['seq-write'], 'bare');
    const rtt = r.redisRtt;
    const hop = d && b ? `bare @fastify/http-proxy alone adds ${signed(b.p50 - d.p50)} ms at p50, ${signed(b.p99 - d.p99)} ms at p99` : '';
    add(
      'One connection, write on Redis: adds ≤ 0.6 ms at p50 over direct',
      `${signed(a50)} ms`,
      a50 !== null && a50 <= 0.6,
      [
        rtt
          ? `one Redis round trip from the server core: p50 ${fx(rtt.p50, 3)} ms, so the 3 a new write makes in sequence take ${fx(3 * rtt.p50, 3)} ms on their own`
          : '',
        hop,
      ]
        .filter(Boolean)
        .join('; '),
    );
    add(
      'One connection, write on Redis: adds ≤ 2 ms at p99 over direct',
      `${signed(a99)} ms`,
      a99 !== null && a99 <= 2,
      rtt ? `one Redis round trip: p99 ${fx(rtt.p99, 3)} ms` : '',
    );
  }
  if (r.alertsHang) {
    const a = r.alertsHang;
    const [hang, off] = [a.summary.hang, a.summary.off];
    const x = ratio(hang?.rps, off?.rps);
    add(
      'Alerts to a hanging receiver: req/s ≥ 0.9× without alerts',
      `${fr(x)} (${fint(hang?.rps)} vs ${fint(off?.rps)} req/s); CPU µs/req ${fr(ratio(hang?.cpuUsPerReq, off?.cpuUsPerReq))} (${fx(hang?.cpuUsPerReq, 0)} vs ${fx(off?.cpuUsPerReq, 0)})`,
      // Only a valid run counts: every answer a 403, and a receiver that really hung.
      x !== null && x >= 0.9 && a.valid,
      [
        'every write refused 403 limit_exceeded, each an alert on the one side',
        `per round, req/s: ${pairedRatios(runsAsWorkload(a), 'hang', 'off', (run) => run.rps)}`,
        `receiver: ${a.receiver.received} requests received, ${a.receiver.answered} answered`,
        a.valid ? '' : `run invalid: ${a.problems.join('; ')}`,
      ]
        .filter(Boolean)
        .join('; '),
    );
  }
  if (r.inflight) {
    add('Memory: RSS < 150 MB with 200 writes in flight (Redis)', `${fx(r.inflight.rssMaxMiB, 1)} MiB`, r.inflight.rssMaxMiB < 150);
  }
  if (r.soak) {
    const g = soakGrowth(r.soak);
    if (g.early === null || g.late === null)
      add('Memory: no growth over a 3-minute run', `soak of ${fx(r.soak.durationSec, 0)} s: too short to judge (needs ≥ 120 s)`, false);
    else
      add(
        `Memory: no growth over a ${fx(r.soak.durationSec, 0)} s run of new writes (Redis)`,
        `RSS floor ${fx(g.early, 1)} MiB (30–90 s) → ${fx(g.late, 1)} MiB (last minute): ${signed(g.delta, 1)} MiB`,
        g.delta < 10,
        'floor = 10th percentile of RSS samples every 250 ms (under load RSS is a GC sawtooth); under +10 MiB counts as flat',
      );
  }
  return out;
}

/** A new write's scripts in the order it runs them. */
const SCRIPT_ORDER = ['wgBegin', 'wgMarkSent', 'wgFinish'];

/** A phase's runs by side (alerts, leash at one rate) in the shape pairedRatios reads. */
const runsAsWorkload = (a) => ({ contenders: Object.entries(a.runs).map(([id, runs]) => ({ id, runs })) });

/** The alerts phase: writeguard refusing every write, alerts to a hanging receiver against none. */
function alertsSection(a) {
  const row = (label, s, unexpected) =>
    `| ${label} | ${fint(s.rps)} | ${fx(s.p50, 0)} | ${fx(s.p99, 0)} | ${fx(s.cpuUsPerReq, 0)} | ${fx(s.redisCpuUsPerReq, 0)} | ${unexpected} |`;
  const [hang, off] = [a.summary.hang, a.summary.off];
  const c = a.counters.hang ?? {};
  return [
    '## Alerts to a hanging receiver',
    '',
    `writeguard on Redis with a budget no write fits: every new write (\`POST /v1/payments\`, unique key and body) is refused 403 limit_exceeded, and with alerts on each refusal emits a \`limit_exceeded\` alert. Two writeguards side by side, interleaved (A B B A, ${a.rounds} rounds of ${a.warmupSec} s warm-up + ${a.durationSec} s measured, ${a.connections} connections): one with its webhook pointed at a loopback receiver that reads each request and never answers, one without alerts. Medians; ratios of the medians. Phase time ${fx(a.phaseSec, 1)} s.`,
    '',
    '| writeguard on Redis, every write refused | req/s | p50 ms | p99 ms | CPU µs/req | + Redis CPU µs/req | answers other than 403 / errors |',
    '|---|--:|--:|--:|--:|--:|--:|',
    row('no alerts', off, a.unexpected.off),
    row('alerts to a hanging receiver', hang, a.unexpected.hang),
    `| **hanging ÷ none** | ${fr(ratio(hang.rps, off.rps))} | ${fr(ratio(hang.p50, off.p50))} | ${fr(ratio(hang.p99, off.p99))} | ${fr(ratio(hang.cpuUsPerReq, off.cpuUsPerReq))} | ${fr(ratio(hang.redisCpuUsPerReq, off.redisCpuUsPerReq))} | |`,
    '',
    `Per round (hanging ÷ none): req/s ${pairedRatios(runsAsWorkload(a), 'hang', 'off', (run) => run.rps)}; CPU µs/req ${pairedRatios(runsAsWorkload(a), 'hang', 'off', (run) => run.cpuUsPerReq)}.`,
    `The receiver got ${a.receiver.received} requests and answered ${a.receiver.answered}; writeguard gave up waiting on ${a.receiver.abandoned} of them (its delivery timeout). writeguard's alert counters: ${c.delivered ?? '—'} delivered, ${c.failed ?? '—'} given up, ${fint(c.dropped)} dropped (queue full).`,
    '',
  ];
}

/** CPU µs of the process and of its Redis per request; null unless both were measured. */
function cpuWithRedis(s) {
  return s && typeof s.cpuUsPerReq === 'number' && typeof s.redisCpuUsPerReq === 'number' ? s.cpuUsPerReq + s.redisCpuUsPerReq : null;
}

/** a ÷ b of one metric, round by round (the rounds interleave both contenders): "1.04×, 1.10×". */
function pairedRatios(wl, a, b, metric) {
  const runsOf = (id) => wl?.contenders.find((c) => c.id === id)?.runs ?? [];
  const [ra, rb] = [runsOf(a), runsOf(b)];
  const list = ra.slice(0, rb.length).map((x, i) => fr(ratio(metric(x), metric(rb[i]))));
  return list.length === 0 ? '—' : list.join(', ');
}

/**
 * What a missed throughput target asks of writeguard's CPU. On the shared server core req/s scale
 * about as 1 / CPU per request, so reaching `target` from `measured` needs the CPU µs/req times
 * measured / target; the floor (when run) is what the stack costs with no logic at all.
 */
function cpuNeeded(measured, target, cpu, floorCpu = null) {
  if (measured === null || cpu == null || measured >= target) return '';
  const need = (cpu * measured) / target;
  const floor =
    floorCpu == null
      ? ''
      : ` — over the fastify floor's ${fx(floorCpu, 0)} µs, writeguard's own work may then add ${fx(need - floorCpu, 0)} µs (now ${fx(cpu - floorCpu, 0)})`;
  return `to meet it: about ${fx(need, 0)} µs CPU/req instead of ${fx(cpu, 0)} (${signed(need - cpu, 0)})${floor}`;
}

const notes = (...xs) => xs.filter(Boolean).join('; ');

/** What the fastify floor contender (the stack with no logic) reaches against a target's baseline. */
function floorNote(wl, base, baseLabel) {
  const x = ratio(find(wl, 'floor')?.rps, base?.rps);
  return x === null ? '' : `fastify floor (the stack, no logic): ${fr(x)} ${baseLabel}`;
}

/** The p-th percentile (0-100) of the finite numbers in xs; null when there are none. */
export const percentile = (xs, p) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  return v.length === 0 ? null : v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))];
};

/**
 * Retained memory early in the soak against the last minute. Under load RSS is a GC sawtooth; its
 * floor (10th percentile of the samples in a window) is what stays alive, so floors are compared:
 * [30 s, 90 s) — the heap has settled after 30 s — against the last 60 s.
 */
export function soakGrowth(soak) {
  const end = soak.trace.length === 0 ? 0 : soak.trace[soak.trace.length - 1][0];
  if (end < 120) return { early: null, late: null, delta: null };
  const floor = (a, b) =>
    percentile(
      soak.trace.filter(([t]) => t >= a && t < b).map(([, v]) => v),
      10,
    );
  const early = floor(30, 90);
  const late = floor(end - 60, end + 1);
  return { early, late, delta: late - early };
}

/** What the soak's writeguard retained after a full collection, once its replay cache was full and at the end. */
function soakHeap({ firstAtSec, first, last }) {
  const live = (h) => h.heapUsedMiB + h.externalMiB;
  return (
    `Live memory after a full garbage collection (bench/lib/heap-probe.mjs; JS heap + external buffers): ` +
    `${fx(live(first), 1)} MiB at ${firstAtSec} s (${fx(first.heapUsedMiB, 1)} + ${fx(first.externalMiB, 1)}), ` +
    `${fx(live(last), 1)} MiB at the end (${fx(last.heapUsedMiB, 1)} + ${fx(last.externalMiB, 1)}): ${signed(live(last) - live(first), 1)} MiB. ` +
    `A leak grows this; RSS also moves with the heap V8 keeps reserved and with the allocator.`
  );
}

/** RSS floor and peak in each 30 s of the soak. */
function soakTimeline(soak) {
  const marks = [];
  for (let t = 0; t < soak.durationSec - 1; t += 30) {
    const window = soak.trace.filter(([s]) => s >= t && s < t + 30).map(([, v]) => v);
    if (window.length > 0) marks.push(`${t}–${t + 30} s: ${fx(percentile(window, 10), 0)}–${fx(Math.max(...window), 0)}`);
  }
  return marks.join(' · ');
}

function throughputTable(wl, workloads) {
  const direct =
    wl.ratioBase === 'direct-writes'
      ? find(
          workloads.find((x) => x.id === 'post-key'),
          'direct',
        )
      : find(wl, 'direct');
  const bare = find(wl, 'bare');
  const lines = [
    `| contender | req/s | × direct${wl.ratioBase === 'direct-writes' ? ' writes' : ''} | × bare | p50 ms | p99 ms | CPU µs/req | CPU × direct | CPU × bare | + Redis CPU µs/req | RSS max MiB | non-2xx / errors |`,
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const c of wl.contenders) {
    const s = c.summary;
    if (s === null) {
      lines.push(`| ${c.label} | skipped: ${c.skip} |||||||||||`);
      continue;
    }
    lines.push(
      `| ${c.label} | ${fint(s.rps)} | ${fr(ratio(s.rps, direct?.rps))} | ${fr(ratio(s.rps, bare?.rps))} | ${fx(s.p50, 0)} | ${fx(s.p99, 0)} | ${fx(s.cpuUsPerReq, 0)} | ${fr(ratio(s.cpuUsPerReq, direct?.cpuUsPerReq))} | ${fr(ratio(s.cpuUsPerReq, bare?.cpuUsPerReq))} | ${s.redisCpuUsPerReq === null ? '' : fx(s.redisCpuUsPerReq, 0)} | ${fx(s.rssLoadMiB, 0)} | ${s.unexpected} |`,
    );
  }
  return lines.join('\n');
}

/** Leash on against off: writeguard on Redis with and without the leash, in the same rounds, then at one offered rate. */
function leashTable(wl, at) {
  const off = find(wl, 'wg-redis');
  const on = find(wl, 'wg-leash');
  if (on === null || off === null) return null;
  const row = (label, s) =>
    `| ${label} | ${fint(s.rps)} | ${fx(s.p50, 0)} | ${fx(s.p99, 0)} | ${fx(s.cpuUsPerReq, 0)} | ${fx(s.redisCpuUsPerReq, 0)} | ${fx(cpuWithRedis(s), 0)} |`;
  return [
    'Leash on against off — writeguard on Redis with one budget and one intent, next to the same without (medians; ratios of the medians):',
    '',
    '| writeguard on Redis | req/s | p50 ms | p99 ms | CPU µs/req | + Redis CPU µs/req | writeguard + Redis µs/req |',
    '|---|--:|--:|--:|--:|--:|--:|',
    row('leash off', off),
    row('leash on', on),
    `| **on ÷ off** | ${fr(ratio(on.rps, off.rps))} | ${fr(ratio(on.p50, off.p50))} | ${fr(ratio(on.p99, off.p99))} | ${fr(ratio(on.cpuUsPerReq, off.cpuUsPerReq))} | ${fr(ratio(on.redisCpuUsPerReq, off.redisCpuUsPerReq))} | ${fr(ratio(cpuWithRedis(on), cpuWithRedis(off)))} |`,
    ...(at === null
      ? []
      : [
          row(`leash off, ${fint(at.rate)} req/s offered`, at.summary.off),
          row(`leash on, ${fint(at.rate)} req/s offered`, at.summary.on),
          `| **on ÷ off, at one rate** | ${fr(ratio(at.summary.on.rps, at.summary.off.rps))} | ${fr(ratio(at.summary.on.p50, at.summary.off.p50))} | ${fr(ratio(at.summary.on.p99, at.summary.off.p99))} | ${fr(ratio(at.summary.on.cpuUsPerReq, at.summary.off.cpuUsPerReq))} | ${fr(ratio(at.summary.on.redisCpuUsPerReq, at.summary.off.redisCpuUsPerReq))} | ${fr(ratio(cpuWithRedis(at.summary.on), cpuWithRedis(at.summary.off)))} |`,
          '',
          `Flat out, the side with more Redis work per write answers fewer requests a second, so fewer requests share each syscall (on writeguard and on Redis, which shares the server core) and every one costs more CPU. The rows at one rate compare the work itself: both writeguards offered ${fint(at.rate)} req/s (${Math.round(at.share * 100)}% of leash-on's median flat-out req/s), interleaved A B B A, ${at.rounds} round${at.rounds === 1 ? '' : 's'} of ${at.warmupSec} s warm-up + ${at.durationSec} s measured; per pair, CPU µs/req on ÷ off: ${pairedRatios(runsAsWorkload(at), 'on', 'off', (run) => run.cpuUsPerReq)}.`,
        ]),
  ].join('\n');
}

/** Tracing on against off: writeguard on Redis with and without OpenTelemetry, in the same rounds. */
function tracingTable(wl) {
  const off = find(wl, 'wg-redis');
  const on = find(wl, 'wg-otel');
  if (on === null || off === null) return null;
  const row = (label, s) =>
    `| ${label} | ${fint(s.rps)} | ${fx(s.p50, 0)} | ${fx(s.p99, 0)} | ${fx(s.cpuUsPerReq, 0)} | ${fx(s.rssLoadMiB, 0)} |`;
  return [
    'Tracing on against off — writeguard on Redis with OpenTelemetry exporting to a loopback sink, next to the same with tracing off (the default; medians; ratios of the medians):',
    '',
    '| writeguard on Redis | req/s | p50 ms | p99 ms | CPU µs/req | RSS max MiB |',
    '|---|--:|--:|--:|--:|--:|',
    row('tracing off', off),
    row('tracing on', on),
    `| **on ÷ off** | ${fr(ratio(on.rps, off.rps))} | ${fr(ratio(on.p50, off.p50))} | ${fr(ratio(on.p99, off.p99))} | ${fr(ratio(on.cpuUsPerReq, off.cpuUsPerReq))} | ${fr(ratio(on.rssLoadMiB, off.rssLoadMiB))} |`,
    '',
    `Per round (on ÷ off): req/s ${pairedRatios(wl, 'wg-otel', 'wg-redis', (run) => run.rps)}; CPU µs/req ${pairedRatios(wl, 'wg-otel', 'wg-redis', (run) => run.cpuUsPerReq)}.`,
  ].join('\n');
}

function latencyTable(wl) {
  const direct = find(wl, 'direct');
  const lines = [
    '| contender | req/s | p50 ms | p99 ms | mean ms | added p50 ms | added p99 ms | CPU µs/req | non-2xx / errors |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  for (const c of wl.contenders) {
    const s = c.summary;
    if (s === null) continue;
    const mean = median(c.runs.map((x) => x.mean));
    lines.push(
      `| ${c.label} | ${fint(s.rps)} | ${fx(s.p50, 3)} | ${fx(s.p99, 3)} | ${fx(mean, 3)} | ${c.id === 'direct' ? '' : signed(s.p50 - direct.p50)} | ${c.id === 'direct' ? '' : signed(s.p99 - direct.p99)} | ${fx(s.cpuUsPerReq, 0)} | ${s.unexpected} |`,
    );
  }
  return lines.join('\n');
}

/**
 * Where writeguard's CPU goes beyond the fastify floor's, by package: each profile's share of busy
 * time times the CPU µs/req the same contender used in the main runs. A profiled run is not a main
 * run (profiler overhead; upstream and Redis on the other core), so its own µs would not add up to
 * the table's.
 */
function floorDiff(p, wgCpu, floorCpu) {
  const perReq = (prof, cpu) => new Map(prof.summary.byCategory.map((c) => [c.name, (c.pct / 100) * cpu]));
  const wg = perReq(p, wgCpu);
  const floor = perReq(p.floor, floorCpu);
  const rows = [...new Set([...wg.keys(), ...floor.keys()])]
    .map((name) => ({ name, wg: wg.get(name) ?? 0, floor: floor.get(name) ?? 0 }))
    .map((r) => ({ ...r, extra: r.wg - r.floor }))
    .sort((a, b) => b.extra - a.extra);
  const out = [
    `Against the fastify floor (the same stack with no logic, profiled under the same load: ${fint(p.floor.rps)} req/s, ${fx(p.floor.cpuUsPerReq, 0)} µs CPU/req under the profiler). ` +
      'Estimated CPU µs per request by package: its share of busy time in the profile × the CPU µs/req measured in the main runs (median), largest extra first.',
    '',
    '| where | floor µs/req | writeguard µs/req | writeguard extra |',
    '|---|--:|--:|--:|',
  ];
  for (const r of rows.filter((x) => Math.abs(x.extra) >= 0.5).slice(0, 14))
    out.push(`| ${r.name} | ${fx(r.floor, 1)} | ${fx(r.wg, 1)} | ${signed(r.extra, 1)} |`);
  out.push(`| **all** (main runs, median) | ${fx(floorCpu, 1)} | ${fx(wgCpu, 1)} | ${signed(wgCpu - floorCpu, 1)} |`);
  return out;
}

function profileSection(profiles, workloads) {
  const out = ['## Where the time goes', ''];
  if (profiles.length === 0) {
    out.push('Every writeguard target was met: no profile was taken.', '');
    return out;
  }
  out.push(
    'writeguard on Redis, run again under `node --cpu-prof` for each workload whose target was missed, with the',
    'same load. For the profile, writeguard has the server core to itself (upstream and Redis move to the load core):',
    'V8 samples by wall clock, and a co-located Redis running while writeguard sits in a `send()` would be charged',
    'to that send. Only the samples of the measured window count (no start-up, no warm-up). Percentages are of the',
    "process's busy (non-idle) time; *self* is time in the function itself, *inclusive* adds what it calls. Native",
    'entries such as `writeUtf8String`, `writev` and `writeString` are the socket / file write system calls (their',
    'kernel time included). Summarised by `bench/profile.mjs` (`node bench/profile.mjs FILE.cpuprofile` prints the full lists).',
    '',
  );
  for (const p of profiles) {
    const s = p.summary;
    out.push(
      `### ${p.title}`,
      '',
      `${fint(p.rps)} req/s and ${fx(p.cpuUsPerReq, 0)} µs CPU/req under the profiler; in the window: busy ${fx(s.busyMs / 1000, 2)} s, idle ${fx(s.idleMs / 1000, 2)} s${s.windowed ? '' : ' (whole profile: the window could not be matched)'}.`,
      '',
    );
    out.push('By package:', '', '| where | % busy, self | % busy, inclusive |', '|---|--:|--:|');
    for (const c of s.byCategory.slice(0, 16)) out.push(`| ${c.name} | ${fx(c.pct, 1)} | ${fx(c.inclusivePct, 1)} |`);
    const wl = workloads.find((w) => w.id === p.id);
    const [wgCpu, floorCpu] = [find(wl, 'wg-redis')?.cpuUsPerReq, find(wl, 'floor')?.cpuUsPerReq];
    if (p.floor && wgCpu && floorCpu) out.push('', ...floorDiff(p, wgCpu, floorCpu));
    out.push('', 'Top functions by self time:', '', '| % busy | function | at |', '|--:|---|---|');
    for (const f of s.self.slice(0, 20)) out.push(`| ${fx(f.pct, 1)} | \`${f.fn}\` | ${f.where} |`);
    out.push('', "writeguard's own functions, inclusive (self + callees):", '', '| % busy | function | at |', '|--:|---|---|');
    for (const f of s.writeguard.slice(0, 15)) out.push(`| ${fx(f.pct, 1)} | \`${f.fn}\` | ${f.where} |`);
    out.push('');
  }
  return out;
}

export function render(r) {
  const targets = r.targets;
  const out = [
    '# writeguard benchmark results',
    '',
    `Generated by \`npm run bench\` (bench/run.mjs) — do not edit by hand.`,
    '',
    `- Date: ${r.meta.date}`,
    `- Commit: \`${r.meta.commit}\`${r.meta.dirty ? ' (work tree had uncommitted changes)' : ''}`,
    `- Machine: ${r.meta.nproc} cores (${r.meta.cpuModel}), Node ${r.meta.node}, ${r.meta.redis}, ${r.meta.nginx}`,
    `- Pinning: ${r.meta.pinning}`,
    `- Method: ${r.cfg.rounds} rounds, contenders interleaved (order rotated each round), medians reported; throughput runs ${r.cfg.warmupSec} s warm-up + ${r.cfg.durationSec} s measured with autocannon, ${r.cfg.connections} connections; one-connection runs ${r.cfg.seqWarmupSec} s + ${r.cfg.seqDurationSec} s with a per-request hrtime client. Total bench time ${fx(r.totalSec / 60, 1)} min.`,
    "- CPU µs/req: utime+stime of the system-under-test process(es) over the measured window ÷ requests completed (nginx: master + worker; direct: the upstream itself). `+ Redis CPU`: the private redis-server's share, for contenders that use it.",
    "- Latencies of throughput runs are autocannon's (whole milliseconds, 50 connections, so they mostly show queueing); the one-connection table has sub-millisecond timings.",
    '',
  ];
  // The main runs and the alerts phase's: both are read as comparisons of interleaved runs.
  const measured = [
    ...r.workloads.flatMap((w) => w.contenders.flatMap((c) => c.runs)),
    ...(r.alertsHang ? Object.values(r.alertsHang.runs).flat() : []),
  ];
  const noise = measured.map((x) => x.foreignCores ?? 0);
  const steal = measured.map((x) => x.stealCores ?? 0);
  if (noise.length > 0) {
    const noisy = noise.filter((x) => x > 0.2).length;
    out.push(
      `Machine noise — CPU used by processes the bench did not start, during the measured windows: median ${fx(median(noise), 2)} cores, max ${fx(Math.max(...noise), 2)}; ` +
        `${noisy} of ${noise.length} runs above 0.2 cores${noisy > 0 ? ' (on a shared machine, e.g. other sessions running test suites: read those numbers with care)' : ''}. Hypervisor steal: median ${fx(median(steal), 2)} cores.`,
      '',
    );
  }
  if (r.anomalies.length > 0) {
    out.push('**Anomalies** (runs with unexpected answers or failed checks):', '', ...r.anomalies.map((a) => `- ${a}`), '');
  } else {
    out.push(
      `Every run: zero non-2xx answers, zero errors, zero timeouts; every replay run left the upstream untouched.${r.alertsHang ? ' (The alerts phase is meant to be refused: every one of its answers was a 403, and its receiver hung.)' : ''}`,
      '',
    );
  }

  out.push('## Targets (issue 18; round trips, alerts and memory from issue 6)', '', '| target | measured | |', '|---|---|---|');
  for (const t of targets) out.push(`| ${t.target} | ${t.measured}${t.note ? ` — ${t.note}` : ''} | ${t.met ? 'met' : '**missed**'} |`);
  out.push('');

  for (const wl of r.workloads) {
    out.push(`## ${wl.title}`, '', wl.note, '');
    out.push(wl.kind === 'latency' ? latencyTable(wl) : throughputTable(wl, r.workloads), '');
    for (const table of [leashTable(wl, r.leashAtRate ?? null), tracingTable(wl)]) if (table !== null) out.push(table, '');
  }

  if (r.trips) {
    out.push(
      '## Redis round trips per request (writeguard on Redis)',
      '',
      `${r.trips[0].n} requests of each type, one at a time. Round trips: commands a client sent, counted with \`MONITOR\` (commands a Lua script runs inside Redis are not round trips; the once-a-second sentinel check is left out). \`commandstats\`: INFO commandstats deltas ÷ requests, script-internal commands included.${r.tripsLeash ? ' *Leash on*: the same count on writeguard on Redis with one budget and one intent (the leash-on contender), new writes (unique bodies) only.' : ''}`,
      '',
      '| request type | round trips / req | client commands | Lua-internal commands / req | commandstats per req | upstream requests | answers |',
      '|---|--:|---|--:|---|--:|---|',
    );
    // The leash-on rows go right under the plain row of the same request type.
    const rows = r.trips.flatMap((t) => [
      t,
      ...(r.tripsLeash ?? []).filter((l) => l.id === t.id).map((l) => ({ ...l, label: `${l.label}, **leash on**` })),
    ]);
    for (const t of rows) {
      const cmds =
        Object.entries(t.clientCommands)
          .map(([k, v]) => `${k} ×${fx(v / t.n, 2)}`)
          .join(', ') || 'none';
      const stats =
        Object.entries(t.commandstatsPerReq)
          .map(([k, v]) => `${k} ${fx(v, 2)}`)
          .join(', ') || 'none';
      const statuses = Object.entries(t.statuses)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ');
      out.push(
        `| ${t.label} | ${fx(t.roundTripsPerReq)} | ${cmds} | ${fx(t.luaCommandsPerReq)} | ${stats} | ${t.upstreamRequests} | ${statuses} |`,
      );
    }
    const timesLine = (label, t) =>
      t
        ? `- ${label}: ${Object.entries(t.byScript)
            .sort(([a], [b]) => SCRIPT_ORDER.indexOf(a) - SCRIPT_ORDER.indexOf(b))
            .map(
              ([name, x]) =>
                `${name.replace(/^wg/, '').replace(/^./, (c) => c.toLowerCase())} ${fx(x.medianUs, 0)} µs (mean ${fx(x.meanUs, 1)})`,
            )
            .join(', ')}; together ${fx(
            Object.values(t.byScript).reduce((a, x) => a + x.medianUs, 0),
            0,
          )} µs by the medians`
        : null;
    out.push(
      '',
      `Redis's own time per script of a new write — ${r.scriptTimes?.n ?? '—'} new writes one at a time, each command's execution time from \`SLOWLOG\` (script-internal commands included, no network; MONITOR off), median per call. One at a time the server runs cold (caches, clock), so these are above the per-write share under load; they show the scripts' relative weight:`,
      '',
      ...[timesLine('leash off', r.scriptTimes), timesLine('leash on (one budget, one intent)', r.scriptTimesLeash)].filter(Boolean),
    );
    out.push('');
  }

  if (r.alertsHang) out.push(...alertsSection(r.alertsHang));

  out.push('## Memory (RSS)', '', '| contender | idle MiB | under load MiB (max over all runs) |', '|---|--:|--:|');
  for (const m of Object.values(r.rss)) out.push(`| ${m.label} | ${fx(m.idle, 1)} | ${fx(m.load, 1)} |`);
  out.push('');
  if (r.inflight) {
    const f = r.inflight;
    out.push(
      `200 writes in flight — writeguard on Redis, ${f.connections} connections, upstream holding each POST ${f.postDelayMs} ms, ${f.durationSec} s: ` +
        `RSS idle ${fx(f.rssIdleMiB, 1)} MiB, max ${fx(f.rssMaxMiB, 1)} MiB, after ${fx(f.rssAfterMiB, 1)} MiB; ${fint(f.rps)} req/s, p50 ${fx(f.p50, 0)} ms, p99 ${fx(f.p99, 0)} ms, ${f.unexpected} non-2xx/errors.`,
      '',
    );
  }
  if (r.soak) {
    const s = r.soak;
    out.push(
      `Soak — writeguard on Redis, new writes, ${r.cfg.connections} connections, ${fx(s.durationSec, 0)} s: ${fint(s.total)} writes at ${fint(s.rps)} req/s, ${fx(s.cpuUsPerReq, 0)} µs CPU/req, ${s.unexpected} non-2xx/errors; ` +
        `RSS idle ${fx(s.rssIdleMiB, 1)} MiB, max ${fx(s.rssMaxMiB, 1)} MiB. RSS floor–peak (MiB) per 30 s: ${soakTimeline(s)}.`,
      '',
      ...(s.heap == null ? [] : [soakHeap(s.heap), '']),
    );
  }
  for (const [id, rounds] of Object.entries(r.rssByRound)) {
    out.push(`RSS of ${id} after each round of the main runs: ${rounds.map((x) => fx(x, 1)).join(' → ')} MiB.`);
  }
  out.push('');
  out.push(...profileSection(r.profiles, r.workloads));
  if ((r.profilesLeftOut ?? []).length > 0)
    out.push(`Not profiled, for lack of time within the bench's 15 minutes: ${r.profilesLeftOut.join('; ')}.`, '');
  out.push('## Caveats', '', ...r.caveats.map((c) => `- ${c}`), '');
  return out.join('\n');
}
