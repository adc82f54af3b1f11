// 6. Redis faults through the TCP fault proxy between writeguard (A) and Redis: a reply lost after
// Redis applied the command (begin: the resend must recognise its own claim — no false 409, no hang,
// one execution; markSent: nothing is sent; finish: the answer still reaches the agent), connections
// cut and frozen under load, and the real redis-server frozen (SIGSTOP) past the command timeout.
// (Redis restarted empty — sentinel missing, fail closed until `store ack` — runs in scenario 4.)
import { randomUUID } from 'node:crypto';
import { createRedisStore } from '../../../src/store/index.js';
import { BEGIN, FINISH, MARK_SENT } from '../../../src/store/redis/scripts.js';
import { redisStoreConfig, startRedis } from '../../helpers/redis.js';
import { runLoad } from '../lib/agents.js';
import { startChaosUpstream } from '../lib/chaos-upstream.js';
import { SECRETS, type Op } from '../lib/checker.js';
import { targetsOf, wgConfig } from '../lib/config.js';
import { faultPlan } from '../lib/faults.js';
import { startRedisFaultProxy, scriptCall } from '../lib/redis-fault-proxy.js';
import { ready, sleep, startWg, until } from '../lib/procs.js';
import type { Scenario } from '../lib/scenario.js';

const COMMAND_TIMEOUT_MS = 500;
const LEASE_MS = 2500;

export const s06: Scenario = {
  id: '6',
  title: 'Redis faults via TCP proxy; Redis SIGSTOP',
  limitMs: 120_000,
  async run(ctx) {
    const redis = await startRedis();
    ctx.defer(() => redis.stop());
    const proxy = await startRedisFaultProxy(redis.port);
    ctx.defer(() => proxy.close());
    const chaos = await startChaosUpstream({
      pick: faultPlan(ctx.seed, { normal: 6, slow: 4, hang: 0, destroy: 0, r429: 0, r503: 0, r503exec: 0, drip: 0 }, 's6'),
      bodySecret: SECRETS.body,
    });
    ctx.defer(() => chaos.close());
    const config = (url: string) =>
      wgConfig({ redisUrl: url, chaosUrl: chaos.url, timeoutMs: 1500, leaseMs: LEASE_MS, commandTimeoutMs: COMMAND_TIMEOUT_MS });
    const [a, b] = await Promise.all([startWg('6', 'wg-a-via-proxy', config(proxy.url)), startWg('6', 'wg-b-direct', config(redis.url))]);
    ctx.defer(() => Promise.all([a.stop(), b.stop()]));
    const store = createRedisStore(redisStoreConfig(redis.url));
    ctx.defer(() => store.close());
    await store.whenReady(5000);
    const checker = ctx.checker();
    const mkOp = (id: string, keyed = true): Op =>
      checker.op({
        id,
        agent: 'agent-6',
        client: 'fetch',
        upstream: 'pay',
        bases: [a.listen[0]!, b.listen[0]!],
        path: '/v1/payments',
        keySource: keyed ? 'client' : 'derived',
        key: keyed ? `${id}-${randomUUID()}` : null,
      });
    const post = async (op: Op, base: string) => {
      const started = Date.now();
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (op.keySource === 'client') headers['idempotency-key'] = op.key!;
      const res = await checker
        .fetchFor(op)(`${base}${op.path}`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ op: op.id, amount: 600 }),
          signal: AbortSignal.timeout(20_000),
        })
        .then(
          async (r) => ({
            status: r.status,
            stored: r.headers.get('writeguard-stored'),
            replayed: r.headers.get('idempotent-replayed') === 'true',
            body: await r.text(),
          }),
          (e: Error) => ({ status: 0, stored: null, replayed: false, body: e.message }),
        );
      return { ...res, ms: Date.now() - started };
    };

    // (a) lost reply of begin, keyed and keyless: the resend carries the same owner token.
    {
      const results: string[] = [];
      let ok = true;
      for (let i = 0; i < 4; i++) {
        const op = mkOp(`op_s6_begin_${i}`, i !== 3);
        const dropped = proxy.dropReply(scriptCall(BEGIN));
        const first = await post(op, a.listen[0]!);
        await Promise.race([dropped, sleep(100)]);
        const again = await post(op, a.listen[0]!);
        results.push(`${op.keySource}: ${first.status} in ${first.ms} ms, retry ${again.status}${again.replayed ? ' replayed' : ''}`);
        ok &&=
          first.status === 201 &&
          first.ms < 10_000 &&
          chaos.executions(op.id) === 1 &&
          (op.keySource === 'derived' ? again.status === 409 : again.replayed);
      }
      ctx.check(
        `(a) begin's reply lost after Redis applied it (${proxy.stats.droppedReplies} dropped): 201, no false 409, no hang, one execution`,
        ok,
        results.join('; '),
        undefined,
      );
      ctx.note(`(a) ${results.join('; ')}`);
    }

    // (b) lost reply of markSent: Redis marked it sent, writeguard does not know. Nothing has left yet,
    // so writeguard resends markSent with the same fence once the store is ready again, then sends once.
    {
      const op = mkOp('op_s6_marksent');
      const dropped = proxy.dropReply(scriptCall(MARK_SENT));
      const first = await post(op, a.listen[0]!);
      await Promise.race([dropped, sleep(100)]);
      ctx.check(
        "(b) markSent's reply lost: resent with its fence, the write sent once, 201",
        first.status === 201 && chaos.executions(op.id) === 1,
        `${first.status} ${first.body.slice(0, 80)}`,
      );
      await checker.retryOp(op, 2, 200, (r) => op.bases[r % 2]!);
      const last = op.exchanges.at(-1);
      ctx.check(
        "(b) the agent's retries replay it: still one execution",
        chaos.executions(op.id) === 1 && last?.status === 201,
        `last ${last?.status} ${last?.code}`,
      );
    }

    // (c) lost reply of finish: the record is stored, writeguard cannot know; the agent still gets the answer.
    {
      const op = mkOp('op_s6_finish');
      const dropped = proxy.dropReply(scriptCall(FINISH));
      const first = await post(op, a.listen[0]!);
      await Promise.race([dropped, sleep(100)]);
      const again = await post(op, b.listen[0]!);
      ctx.check(
        "(c) finish's reply lost: the agent gets the upstream's 201 (Writeguard-Stored: false); the retry replays it",
        first.status === 201 && first.stored === 'false' && again.replayed && again.body === first.body && chaos.executions(op.id) === 1,
        `${first.status} stored=${first.stored}; retry ${again.status}${again.replayed ? ' replayed' : ''}`,
      );
    }

    // (d) connections cut and frozen under load.
    {
      const load = runLoad(checker, { main: [a.listen[0]!], stripe: [a.listen[1]!] }, ctx.rng.fork('cut'), {
        agents: 4,
        prefix: 's6cut',
        stopAt: Date.now() + 8000,
        retryRounds: 12,
        retryPauseMs: 400,
      });
      for (let i = 0; i < 4; i++) {
        await sleep(1500);
        if (i === 2) proxy.freeze(COMMAND_TIMEOUT_MS * 3);
        else proxy.closeAll();
      }
      await load;
      ctx.check(
        '(d) A recovers after its Redis connections were cut 3 times and frozen past the command timeout',
        await until(() => ready(a), 10_000),
      );
    }

    // (e) the real redis-server frozen past the command timeout, under load on both instances.
    {
      const load = runLoad(checker, targetsOf([a, b]), ctx.rng.fork('stop'), {
        agents: 4,
        prefix: 's6stop',
        stopAt: Date.now() + 9000,
        retryRounds: 16,
        retryPauseMs: 500,
      });
      await sleep(2000);
      redis.kill('SIGSTOP');
      let answers: Array<{ status: number; ms: number; body: string }>;
      const probes: Op[] = [];
      try {
        await sleep(COMMAND_TIMEOUT_MS);
        for (const wg of [a, b]) for (let i = 0; i < 2; i++) probes.push(mkOp(`op_s6_frozen_${wg.name.replace(/\W/g, '')}_${i}`));
        answers = await Promise.all(probes.map((op, i) => post(op, i < 2 ? a.listen[0]! : b.listen[0]!)));
        await sleep(1500);
      } finally {
        redis.kill('SIGCONT');
      }
      const maxMs = Math.max(...answers.map((x) => x.ms));
      ctx.check(
        '(e) Redis frozen: writes answer 503 store_unavailable within seconds (no hang), none reaches the upstream',
        answers.every((x) => x.status === 503 && x.body.includes('store_unavailable') && x.ms < 8000) &&
          probes.every((op) => chaos.deliveries(op.id) === 0),
        answers.map((x) => `${x.status} ${x.ms}ms`).join(', '),
      );
      ctx.note(`(e) slowest refusal while Redis was frozen: ${maxMs} ms (commandTimeoutMs ${COMMAND_TIMEOUT_MS})`);
      ctx.check('(e) SIGCONT: both instances ready again', await until(async () => (await ready(a)) && (await ready(b)), 10_000));
      await load;
    }

    await checker.settle({ rounds: 12 });
    ctx.verdict('redis faults', await checker.verify(chaos, store));
  },
};
