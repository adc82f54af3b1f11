// 2. SIGKILL a writeguard process at random points of the write path (random delays after a request
// reached the upstream, or at any moment), restart it on the same ports, and let the agents retry:
// still at most one execution per operation, and every operation ends in a known state.
import { createRedisStore } from '../../../src/store/index.js';
import { freePort } from '../../helpers/ports.js';
import { redisStoreConfig, startRedis } from '../../helpers/redis.js';
import { CLIENT_KINDS, newOp, send } from '../lib/agents.js';
import { startChaosUpstream } from '../lib/chaos-upstream.js';
import { SECRETS } from '../lib/checker.js';
import { targetsOf, wgConfig } from '../lib/config.js';
import { faultPlan } from '../lib/faults.js';
import { markKilled, sleep, startWg, type WgProc } from '../lib/procs.js';
import type { Scenario } from '../lib/scenario.js';

const LOAD_MS = 24_000;
const MAX_KILLS = 8;

export const s02: Scenario = {
  id: '2',
  title: 'SIGKILL writeguard mid-write, restart, retry',
  limitMs: 120_000,
  async run(ctx) {
    const redis = await startRedis();
    ctx.defer(() => redis.stop());
    // Mostly slow answers: a kill lands between execution and answer, between begin and send, or idle.
    const chaos = await startChaosUpstream({
      pick: faultPlan(ctx.seed, { normal: 2, slow: 7, hang: 1, destroy: 0, r429: 1, r503: 0, r503exec: 0, drip: 1 }, 's2'),
      hangMs: 1500,
      bodySecret: SECRETS.body,
    });
    ctx.defer(() => chaos.close());
    const ports = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    const configs = [0, 1].map((i) =>
      wgConfig({
        redisUrl: redis.url,
        chaosUrl: chaos.url,
        timeoutMs: 1000,
        leaseMs: 1800,
        mainPort: ports[i * 3]!,
        stripePort: ports[i * 3 + 1]!,
        adminPort: ports[i * 3 + 2]!,
      }),
    );
    const wgs: WgProc[] = await Promise.all(configs.map((c, i) => startWg('2', `wg-${i}`, c)));
    ctx.defer(() => Promise.all(wgs.map((w) => w.stop())));
    const targets = targetsOf(wgs);
    const checker = ctx.checker();
    const stopAt = Date.now() + LOAD_MS;

    let kills = 0;
    const killer = (async () => {
      const r = ctx.rng.fork('killer');
      while (Date.now() < stopAt - 3000 && kills < MAX_KILLS) {
        await sleep(r.int(1500, 3000));
        const victim = r.int(0, 1);
        if (r.chance(0.7)) {
          // Right after a request reached the upstream: the write is sent, its answer not yet recorded.
          await new Promise<void>((resolve) => {
            const off = chaos.onArrival(() => {
              off();
              resolve();
            });
            setTimeout(() => {
              off();
              resolve();
            }, 2000);
          });
          await sleep(r.int(0, 400));
        }
        const wg = wgs[victim]!;
        markKilled(wg);
        wg.signal('SIGKILL');
        await wg.exited;
        kills++;
        await sleep(r.int(100, 600));
        wgs[victim] = await startWg('2', `wg-${victim}-r${kills}`, configs[victim]!, { expectKill: false });
      }
    })();

    await Promise.all(
      Array.from({ length: 6 }, async (_, a) => {
        const r = ctx.rng.fork(`agent-${a}`);
        const kind = CLIENT_KINDS[a % CLIENT_KINDS.length]!;
        for (let n = 0; Date.now() < stopAt && n < 40; n++) {
          const op = newOp(checker, kind, `agent-${a}`, `op_s2_a${a}_n${n}`, targets);
          await send(checker, op, r.int(0, 1), { timeoutMs: 3000 });
          // The agent retries what did not settle (its process may have died under it).
          await checker.retryOp(op, 6, 400, (round) => op.bases[(round + a) % 2]!);
          await sleep(r.int(50, 300));
        }
      }),
    );
    await killer;
    ctx.note(`${kills} SIGKILLs; faults served: ${[...new Set(chaos.arrivals.map((x) => x.fault))].join(', ')}`);
    await checker.settle({ rounds: 14 });

    const store = createRedisStore(redisStoreConfig(redis.url));
    ctx.defer(() => store.close());
    await store.whenReady(5000);
    ctx.verdict('after kills', await checker.verify(chaos, store));
    ctx.check(
      `writeguard was killed at random points (${kills} kills) and restarted each time`,
      kills >= 3 && wgs.every((w) => w.running()),
    );
  },
};
