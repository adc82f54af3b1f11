// 1. A seeded, reproducible workload: agents with the real retrying clients (openai keyless, stripe
// with its own keys and maxNetworkRetries 2, axios + axios-retry, fetch) against two writeguard
// processes sharing one Redis, the chaos upstream injecting every fault mode at random.
import { createRedisStore } from '../../../src/store/index.js';
import { redisStoreConfig, startRedis } from '../../helpers/redis.js';
import { CLIENT_KINDS, newOp, send } from '../lib/agents.js';
import { startChaosUpstream } from '../lib/chaos-upstream.js';
import { SECRETS } from '../lib/checker.js';
import { targetsOf, wgConfig } from '../lib/config.js';
import { faultPlan, WORKLOAD_MIX } from '../lib/faults.js';
import { sleep, startWg } from '../lib/procs.js';
import type { Scenario } from '../lib/scenario.js';

const AGENTS = 8;
const OPS_PER_AGENT = 9;

export const s01: Scenario = {
  id: '1',
  title: 'randomized workload: 4 clients x 2 wg x Redis',
  limitMs: 150_000,
  async run(ctx) {
    const redis = await startRedis();
    ctx.defer(() => redis.stop());
    const chaos = await startChaosUpstream({ pick: faultPlan(ctx.seed, WORKLOAD_MIX, 's1'), hangMs: 2600, bodySecret: SECRETS.body });
    ctx.defer(() => chaos.close());
    const config = wgConfig({ redisUrl: redis.url, chaosUrl: chaos.url, timeoutMs: 2000 });
    const wgs = await Promise.all([startWg('1', 'wg-a', config), startWg('1', 'wg-b', config)]);
    for (const wg of wgs) ctx.defer(() => wg.stop());
    const targets = targetsOf(wgs);
    const checker = ctx.checker();
    const started = Date.now();

    await Promise.all(
      Array.from({ length: AGENTS }, async (_, a) => {
        const r = ctx.rng.fork(`agent-${a}`);
        const kind = CLIENT_KINDS[a % CLIENT_KINDS.length]!;
        for (let n = 0; n < OPS_PER_AGENT; n++) {
          const duplicate = r.chance(0.2);
          const op = newOp(checker, kind, `agent-${a}`, `op_s1_a${a}_n${n}`, targets, r.chance(0.3), duplicate);
          const instance = r.int(0, 1);
          // Some clients give up before writeguard's own timeout (2 s) and retry while the first attempt runs.
          const timeoutMs = r.pick([1200, 4000, 6000]);
          const sends = [send(checker, op, instance, { timeoutMs })];
          if (duplicate) sends.push(sleep(r.int(0, 150)).then(() => send(checker, op, 1 - instance, { timeoutMs })));
          await Promise.all(sends);
          await sleep(r.int(0, 250));
        }
      }),
    );
    ctx.note(
      `load phase ${((Date.now() - started) / 1000).toFixed(1)} s; faults served: ${faultCounts(chaos.arrivals.map((x) => x.fault))}`,
    );
    await checker.settle();

    const store = createRedisStore(redisStoreConfig(redis.url));
    ctx.defer(() => store.close());
    await store.whenReady(5000);
    ctx.verdict('workload', await checker.verify(chaos, store));
    const dupKeys = chaos.duplicateKeys();
    ctx.check(
      'no idempotency key executed twice upstream',
      dupKeys.length === 0,
      dupKeys
        .slice(0, 5)
        .map((d) => `${d.key} x${d.executions}`)
        .join(', '),
    );
    const kinds = new Set(chaos.arrivals.map((x) => x.fault));
    const all = ['normal', 'hang', 'destroy', 'r429', 'r503', 'drip'];
    ctx.check(
      'every fault mode was injected',
      all.every((k) => kinds.has(k as never)),
      `seen: ${[...kinds].join(', ')}`,
    );
    const byClient = CLIENT_KINDS.map((k) => `${k} ${checker.ops.filter((o) => o.client === k).length}`).join(', ');
    ctx.check(
      `every client kind ran (${byClient})`,
      CLIENT_KINDS.every((k) => checker.ops.some((o) => o.client === k && o.exchanges.length > 0)),
    );
    ctx.check(
      'both writeguard processes still running',
      wgs.every((w) => w.running()),
    );
  },
};

export function faultCounts(kinds: string[]): string {
  const m = new Map<string, number>();
  for (const k of kinds) m.set(k, (m.get(k) ?? 0) + 1);
  return [...m].map(([k, n]) => `${k} ${n}`).join(', ');
}
