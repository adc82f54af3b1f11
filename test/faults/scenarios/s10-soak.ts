// 10. A bounded soak: mixed reads and writes from every client kind against two writeguard processes,
// the chaos upstream injecting faults at a moderate rate, short TTLs. RSS after warm-up and at the end
// (growth under 10 %), open file descriptors (/proc/<pid>/fd) stable, Redis key count bounded by the
// TTLs once the load stops (only the dead letters, which never expire, and fixed keys remain).
import { Redis } from 'ioredis';
import { createRedisStore } from '../../../src/store/index.js';
import { redisStoreConfig, startRedis } from '../../helpers/redis.js';
import { runLoad } from '../lib/agents.js';
import { startChaosUpstream } from '../lib/chaos-upstream.js';
import { agentHeaders, SECRETS } from '../lib/checker.js';
import { targetsOf, wgConfig } from '../lib/config.js';
import { faultPlan } from '../lib/faults.js';
import { procStats, sleep, startWg, type WgProc } from '../lib/procs.js';
import type { Scenario } from '../lib/scenario.js';

const TTL_SEC = 4;
const TOMBSTONE_SEC = 4;

interface Sample {
  at: number;
  rssKb: number;
  fds: number;
  heapMb: number;
}

async function heapUsedMb(wg: WgProc): Promise<number> {
  try {
    const text = await fetch(`${wg.admin}/metrics`, { signal: AbortSignal.timeout(3000) }).then((r) => r.text());
    return Number(/^writeguard_process_nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? NaN) / 1048576;
  } catch {
    return NaN;
  }
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

export const s10: Scenario = {
  id: '10',
  title: 'soak: mixed load, random faults',
  limitMs: 420_000,
  async run(ctx) {
    const soakMs = ctx.options.soakSec * 1000;
    const redis = await startRedis();
    ctx.defer(() => redis.stop());
    const chaos = await startChaosUpstream({
      pick: faultPlan(ctx.seed, { normal: 70, slow: 10, hang: 2, destroy: 3, r429: 5, r503: 3, r503exec: 1, drip: 6 }, 's10'),
      hangMs: 2500,
      bodySecret: SECRETS.body,
    });
    ctx.defer(() => chaos.close());
    const config = wgConfig({
      redisUrl: redis.url,
      chaosUrl: chaos.url,
      timeoutMs: 2000,
      ttlSec: TTL_SEC,
      tombstoneSec: TOMBSTONE_SEC,
      deriveWindowSec: TTL_SEC,
    });
    const wgs = await Promise.all([startWg('10', 'wg-a', config), startWg('10', 'wg-b', config)]);
    ctx.defer(() => Promise.all(wgs.map((w) => w.stop())));
    const checker = ctx.checker();
    const started = Date.now();
    const stopAt = started + soakMs;

    const writes = runLoad(checker, targetsOf(wgs), ctx.rng.fork('soak'), {
      agents: 4,
      prefix: 's10',
      stopAt,
      timeoutMs: 4000,
      retryRounds: 8,
      retryPauseMs: 500,
      pauseMs: [150, 450],
      queryTokenChance: 0.3,
    });
    const reads = (async () => {
      const f = checker.traffic.fetchFor(null, agentHeaders('reader'));
      const r = ctx.rng.fork('reader');
      while (Date.now() < stopAt) {
        await f(`${wgs[r.int(0, 1)]!.listen[0]}/v1/payments?limit=10&token=${SECRETS.queryToken}`, {
          signal: AbortSignal.timeout(10_000),
        }).then(
          (x) => x.arrayBuffer(),
          () => undefined,
        );
        await sleep(r.int(100, 300));
      }
    })();

    // Every 5 s under load: RSS, open descriptors, heap in use. Warm-up is the first half of the soak;
    // "start" is the median of the samples in the 15 s after it, "end" the median of the last 15 s.
    const series: Sample[][] = wgs.map(() => []);
    while (Date.now() < stopAt - 1000) {
      for (let i = 0; i < wgs.length; i++) {
        const { rssKb, fds } = procStats(wgs[i]!.pid);
        series[i]!.push({ at: Date.now() - started, rssKb, fds, heapMb: await heapUsedMb(wgs[i]!) });
      }
      await sleep(Math.min(5000, Math.max(0, stopAt - 1000 - Date.now())));
    }
    await Promise.all([writes, reads]);
    const raw0 = new Redis(redis.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
    raw0.on('error', () => undefined);
    const liveKeys = await raw0
      .connect()
      .then(() => raw0.dbsize())
      .catch(() => -1);
    raw0.disconnect();
    const warmAt = soakMs * 0.5;
    for (let i = 0; i < wgs.length; i++) {
      const all = series[i]!;
      const warm = all.filter((x) => x.at >= warmAt && x.at < warmAt + 15_000);
      const last = all.filter((x) => x.at >= all.at(-1)!.at - 15_000);
      const w = { rss: median(warm.map((x) => x.rssKb)), fds: median(warm.map((x) => x.fds)), heap: median(warm.map((x) => x.heapMb)) };
      const e = { rss: median(last.map((x) => x.rssKb)), fds: median(last.map((x) => x.fds)), heap: median(last.map((x) => x.heapMb)) };
      const growth = (e.rss - w.rss) / w.rss;
      ctx.check(
        `${wgs[i]!.name}: RSS after warm-up ${(w.rss / 1024).toFixed(1)} MiB → end ${(e.rss / 1024).toFixed(1)} MiB (${(growth * 100).toFixed(1)} %, limit 10 %)`,
        growth < 0.1,
        all.map((x) => `${Math.round(x.at / 1000)}s:${(x.rssKb / 1024).toFixed(0)}`).join(' '),
      );
      ctx.check(`${wgs[i]!.name}: open file descriptors stable (${w.fds} → ${e.fds})`, e.fds <= w.fds + 10);
      ctx.note(
        `${wgs[i]!.name}: heap in use ${w.heap.toFixed(1)} → ${e.heap.toFixed(1)} MiB; RSS series (MiB) ${all
          .filter((_, k) => k % 3 === 0)
          .map((x) => (x.rssKb / 1024).toFixed(0))
          .join(' ')}`,
      );
    }
    ctx.note(
      `${checker.ops.length} writes and ${checker.traffic.exchanges.length} requests in ${((Date.now() - started) / 1000).toFixed(0)} s; ${liveKeys} Redis keys at the end of the load`,
    );

    await checker.settle({ rounds: 8 });
    const store = createRedisStore(redisStoreConfig(redis.url));
    ctx.defer(() => store.close());
    await store.whenReady(5000);
    ctx.verdict('soak', await checker.verify(chaos, store));

    // Once the TTLs have run out, only what never expires remains: unresolved dead letters (one record
    // each, plus one dlq set per agent) and the sentinel keys.
    await sleep((TTL_SEC + TOMBSTONE_SEC + 2) * 1000);
    const raw = new Redis(redis.port, '127.0.0.1');
    try {
      const keys = await raw.keys('*');
      const letters = await store.deadLetters(100_000);
      const dlqSets = keys.filter((k) => k.endsWith(':dlq')).length;
      const fixed = keys.filter((k) => k.startsWith('wg:sentinel')).length;
      const records = keys.length - dlqSets - fixed;
      ctx.check(
        `Redis key count bounded by the TTLs: ${keys.length} keys after ${TTL_SEC + TOMBSTONE_SEC + 2} s idle = ${letters.length} dead letters + ${dlqSets} dlq sets + ${fixed} sentinel keys`,
        records <= letters.length && dlqSets <= 5,
        `${records} records for ${letters.length} dead letters; sample: ${keys
          .filter((k) => !k.endsWith(':dlq') && !k.startsWith('wg:sentinel'))
          .slice(0, 3)
          .join(', ')}`,
      );
    } finally {
      raw.disconnect();
    }
    ctx.check(
      'both processes still running',
      wgs.every((w) => w.running()),
    );
  },
};
