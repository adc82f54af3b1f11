// One measured run: a load client (autocannon, or the one-connection timer) in its own process on
// the load core, and around its measured window the samples that make the numbers honest — CPU
// ticks and RSS of the system under test, Redis command counts, the upstream's own request count.
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CLK_TCK, CORE_LOAD, machineTicks, ownTicks, start, stop, sumRss, sumTicks } from './lib/procs.mjs';

const TOOLS = {
  autocannon: fileURLToPath(new URL('./load-worker.mjs', import.meta.url)),
  seq: fileURLToPath(new URL('./seq-client.mjs', import.meta.url)),
};
/** Room past the run's own length before a stuck client is killed. */
const STUCK_MARGIN_MS = 30_000;
/** In-flight requests of the warm-up settle before the counters are read. */
const SETTLE_MS = 300;
const RSS_SAMPLE_MS = 250;

/** Reads the client's JSON events; rejects if it exits or stalls first. */
function events(entry) {
  const queue = [];
  const waiters = [];
  const rl = createInterface({ input: entry.child.stdout });
  rl.on('line', (line) => {
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      return;
    }
    const w = waiters.shift();
    if (w !== undefined) w.resolve(event);
    else queue.push(event);
  });
  entry.exit.then(() => {
    for (const w of waiters.splice(0)) w.reject(new Error(`load client exited early (${entry.name})`));
  });
  return (name, timeoutMs) => {
    if (queue.length > 0) return Promise.resolve(queue.shift());
    if (entry.exited) return Promise.reject(new Error(`load client exited early (${entry.name})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load client gave no ${name} event in ${timeoutMs} ms`)), timeoutMs);
      waiters.push({
        resolve: (e) => (clearTimeout(timer), e.event === name ? resolve(e) : reject(new Error(`expected ${name}, got ${e.event}`))),
        reject: (err) => (clearTimeout(timer), reject(err)),
      });
    });
  };
}

/**
 * @param {object} o
 * @param {'autocannon'|'seq'} o.tool
 * @param {object} o.spec  passed to the client (url, mode, connections, warmupSec, durationSec, replayKey)
 * @param {() => number[]} o.sutPids  processes of the system under test (read after warm-up: nginx's workers)
 * @param {number|null} o.redisPid  a Redis the SUT uses, for its CPU share
 * @param {() => Promise<Record<string, number>>} [o.redisCalls]  Redis commandstats calls by command
 * @param {() => Promise<{get:number, post:number}>} o.upstreamCount
 * @param {boolean} [o.traceRss]  also return every RSS sample as [seconds into the window, MiB]
 * @param {{at: number, run: () => void}[]} [o.marks]  called `at` seconds into the measured window
 */
export async function measure(o) {
  const client = start(`load:${o.spec.mode}`, 'node', [TOOLS[o.tool], JSON.stringify(o.spec)], {
    core: CORE_LOAD,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'inherit',
  });
  const next = events(client);
  try {
    await next('warm', (o.spec.warmupSec + 1) * 1000 + STUCK_MARGIN_MS);
    await sleep(SETTLE_MS);
    const pids = o.sutPids();
    const before = {
      ticks: sumTicks(pids),
      redisTicks: o.redisPid ? sumTicks([o.redisPid]) : 0,
      calls: o.redisCalls ? await o.redisCalls() : null,
      upstream: await o.upstreamCount(),
      machine: machineTicks(),
      own: ownTicks(),
    };
    // Monotonic µs, the clock V8's profiler stamps samples with: lets a profile be cut to this window.
    const windowStartUs = Number(process.hrtime.bigint() / 1000n);
    let rssMax = sumRss(pids);
    const trace = [];
    const sampler = setInterval(() => {
      const rss = sumRss(pids);
      rssMax = Math.max(rssMax, rss);
      if (o.traceRss) trace.push([(Number(process.hrtime.bigint() / 1000n) - windowStartUs) / 1e6, rss]);
    }, RSS_SAMPLE_MS);
    client.child.stdin.write('go\n');
    const marks = (o.marks ?? []).map(({ at, run }) => setTimeout(run, at * 1000));
    let result;
    try {
      result = await next('result', (o.spec.durationSec + 1) * 1000 + STUCK_MARGIN_MS);
    } finally {
      clearInterval(sampler);
      marks.forEach(clearTimeout);
    }
    const windowEndUs = Number(process.hrtime.bigint() / 1000n);
    const ticks = sumTicks(pids) - before.ticks;
    const redisTicks = o.redisPid ? sumTicks([o.redisPid]) - before.redisTicks : 0;
    const machine = machineTicks();
    const own = ownTicks();
    await sleep(SETTLE_MS);
    const calls = o.redisCalls ? await o.redisCalls() : null;
    const upstream = await o.upstreamCount();
    const perReq = (t) => (result.total > 0 ? ((t / CLK_TCK) * 1e6) / result.total : null);
    return {
      ...result,
      cpuUsPerReq: perReq(ticks),
      cpuBusy: ticks / CLK_TCK / result.durationSec,
      // Cores' worth of CPU that processes not started by the bench used during the window.
      foreignCores: Math.max(0, machine.task - before.machine.task - (own - before.own)) / CLK_TCK / result.durationSec,
      stealCores: (machine.steal - before.machine.steal) / CLK_TCK / result.durationSec,
      redisCpuUsPerReq: o.redisPid ? perReq(redisTicks) : null,
      rssLoadMiB: rssMax,
      rssAfterMiB: sumRss(pids),
      upstreamGets: upstream.get - before.upstream.get,
      upstreamPosts: upstream.post - before.upstream.post,
      redisCalls: calls === null ? null : diffCalls(before.calls, calls),
      windowStartUs,
      windowEndUs,
      rssTrace: o.traceRss ? trace : undefined,
    };
  } finally {
    await stop(client, { graceMs: 2000 });
  }
}

function diffCalls(before, after) {
  const out = {};
  for (const [cmd, n] of Object.entries(after)) {
    const d = n - (before[cmd] ?? 0);
    if (d > 0) out[cmd] = d;
  }
  return out;
}
