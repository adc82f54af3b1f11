// 3. A writeguard paused (SIGSTOP) past its lease. (a) After it sent: the other instance answers the
// agent's retries outcome_unknown and never sends again; resumed (SIGCONT), the late finish may settle
// the record with the real answer. (b) The same where the upstream honours the key, so the other
// instance re-sends and completes (epoch 2): the late finish is refused, never overwriting the newer
// attempt. (c) Paused before sending — markSent held back in the Redis fault proxy until the lease
// lapsed: the other instance takes over and sends once, the resumed markSent is refused, nothing sent.
import { randomUUID } from 'node:crypto';
import { keyHash } from '../../../src/idempotency/key.js';
import { createRedisStore } from '../../../src/store/index.js';
import { FINISH, MARK_SENT } from '../../../src/store/redis/scripts.js';
import type { ConfigInput } from '../../../src/config/schema.js';
import { redisStoreConfig, startRedis } from '../../helpers/redis.js';
import { startChaosUpstream, type Fault } from '../lib/chaos-upstream.js';
import { SECRETS, type Op } from '../lib/checker.js';
import { wgConfig } from '../lib/config.js';
import { startRedisFaultProxy, scriptCall } from '../lib/redis-fault-proxy.js';
import { sleep, startWg, until, withTimeout } from '../lib/procs.js';
import type { Scenario } from '../lib/scenario.js';

const TIMEOUT_MS = 1000;
const LEASE_MS = 1500;

export const s03: Scenario = {
  id: '3',
  title: 'SIGSTOP past the lease: after / before sending',
  limitMs: 90_000,
  async run(ctx) {
    const redis = await startRedis();
    ctx.defer(() => redis.stop());
    const proxy = await startRedisFaultProxy(redis.port);
    ctx.defer(() => proxy.close());
    const chaos = await startChaosUpstream({
      pick: (info): Fault => (info.op?.startsWith('op_s3_hold') === true ? { kind: 'hold' } : { kind: 'normal' }),
      bodySecret: SECRETS.body,
      honorKeyPaths: ['/v1/honored'],
    });
    ctx.defer(() => chaos.close());
    const config = (redisUrl: string): ConfigInput => {
      const c = wgConfig({
        redisUrl,
        chaosUrl: chaos.url,
        timeoutMs: TIMEOUT_MS,
        leaseMs: LEASE_MS,
        commandTimeoutMs: 4000,
        stripePort: null,
      });
      c.upstreams[0]!.routes = [{ match: 'POST /v1/honored', idempotency: { upstreamHonorsKey: true } }];
      return c;
    };
    // A reaches Redis through the fault proxy, B directly.
    const [a, b] = await Promise.all([startWg('3', 'wg-a', config(proxy.url)), startWg('3', 'wg-b', config(redis.url))]);
    ctx.defer(() => Promise.all([a.stop(), b.stop()]));
    const store = createRedisStore(redisStoreConfig(redis.url));
    ctx.defer(() => store.close());
    await store.whenReady(5000);
    const checker = ctx.checker();
    const mkOp = (id: string, path: string): Op =>
      checker.op({
        id,
        agent: 'agent-3',
        client: 'fetch',
        upstream: 'pay',
        bases: [a.listen[0]!, b.listen[0]!],
        path,
        keySource: 'client',
        key: `${id}-${randomUUID()}`,
      });
    const post = (op: Op, base: string) =>
      checker
        .fetchFor(op)(`${base}${op.path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': op.key! },
          body: JSON.stringify({ op: op.id, amount: 300 }),
          signal: AbortSignal.timeout(20_000),
        })
        .then(
          async (r) => ({ status: r.status, body: await r.text() }),
          (e: Error) => ({ status: 0, body: e.message }),
        );
    const recordOf = (op: Op) => store.get({ scope: 'live:agent-3', upstream: 'pay', keyHash: keyHash(op.key!) });
    const heldFor = (op: Op) => chaos.held.find((h) => h.op === op.id);
    const resumeA = () => a.signal('SIGCONT');
    ctx.defer(resumeA);

    // (a) paused after sending, no upstream dedupe.
    {
      const op = mkOp('op_s3_hold_a', '/v1/payments');
      const first = post(op, a.listen[0]!);
      ctx.check('3a: the write reached the upstream through A', await until(() => heldFor(op) !== undefined, 10_000));
      a.signal('SIGSTOP');
      await sleep(LEASE_MS + 800);
      const retries = [await post(op, b.listen[0]!), await post(op, b.listen[0]!)];
      ctx.check(
        '3a: while A is paused past its lease, B answers the retries 502 outcome_unknown',
        retries.every((r) => r.status === 502 && r.body.includes('outcome_unknown')),
        retries.map((r) => r.status).join(','),
      );
      ctx.check('3a: B never sent it a second time', chaos.deliveries(op.id) === 1, `deliveries ${chaos.deliveries(op.id)}`);
      heldFor(op)!.release();
      resumeA();
      const late = await withTimeout(first, 15_000, 'A answered after SIGCONT');
      await until(async () => (await recordOf(op))?.state !== 'in_flight', 5000);
      const record = await recordOf(op);
      const settled = record?.state === 'completed';
      const replay = await post(op, b.listen[0]!);
      ctx.check(
        '3a: after SIGCONT the record holds the real answer (late finish) or stays outcome_unknown; one execution',
        chaos.executions(op.id) === 1 &&
          ((settled && record?.status === 201 && replay.status === 201 && replay.body.includes(heldFor(op)!.execId)) ||
            (!settled && record?.state === 'outcome_unknown' && replay.status === 502)),
        `A answered ${late.status}; record ${record?.state}; replay ${replay.status}`,
      );
      ctx.note(
        `3a: A's late finish ${settled ? 'settled the record with the real answer (201)' : 'found it unknown and left it so (its own timeout fired first on resume)'}`,
      );
    }

    // (a2) the same race made deterministic: A has the answer, but its finish is held in the Redis path
    // past the lease; B's retry meanwhile finds the record outcome_unknown; the late finish settles it.
    {
      const op = mkOp('op_s3_a2', '/v1/payments');
      const hit = proxy.delayCommand(scriptCall(FINISH), LEASE_MS + 1800);
      const first = post(op, a.listen[0]!);
      await withTimeout(hit, 10_000, "A's finish reached the fault proxy");
      await sleep(LEASE_MS + 500);
      const retry = await post(op, b.listen[0]!);
      ctx.check(
        "3a2: with A's finish held past the lease, B answers the retry 502 outcome_unknown and does not send",
        retry.status === 502 && retry.body.includes('outcome_unknown') && chaos.deliveries(op.id) === 1,
        `${retry.status}; deliveries ${chaos.deliveries(op.id)}`,
      );
      const late = await withTimeout(first, 15_000, 'A answered');
      await until(async () => (await recordOf(op))?.state === 'completed', 5000);
      const replay = await post(op, b.listen[0]!);
      ctx.check(
        '3a2: the late finish (same owner and epoch, no newer attempt) settles the record with the real answer',
        late.status === 201 && replay.status === 201 && replay.body === late.body,
        `A answered ${late.status}; replay ${replay.status}; record ${(await recordOf(op))?.state}`,
      );
    }

    // (b) paused after sending; the upstream dedupes on the key, so B re-sends (epoch 2) and completes.
    {
      const op = mkOp('op_s3_hold_b', '/v1/honored');
      const first = post(op, a.listen[0]!);
      ctx.check('3b: the write reached the upstream through A', await until(() => heldFor(op) !== undefined, 10_000));
      a.signal('SIGSTOP');
      await sleep(LEASE_MS + 800);
      const byB = await post(op, b.listen[0]!);
      ctx.check(
        "3b: B reclaims the lapsed record and completes it with the upstream's deduped answer",
        byB.status === 201 && byB.body.includes('"attempt":"dedupe"'),
        `${byB.status} ${byB.body.slice(0, 100)}`,
      );
      const warnsBefore = a.logs.lines.filter((l) => l.msg.startsWith('finish refused')).length;
      heldFor(op)!.release();
      resumeA();
      const late = await withTimeout(first, 15_000, 'A answered after SIGCONT');
      const refused = await until(() => a.logs.lines.filter((l) => l.msg.startsWith('finish refused')).length > warnsBefore, 5000);
      const replays = [await post(op, a.listen[0]!), await post(op, b.listen[0]!)];
      const record = await recordOf(op);
      ctx.check(
        "3b: A's late finish (epoch 1) is refused (fencing) and logged",
        refused,
        `A answered ${late.status}; record epoch ${record?.epoch}`,
      );
      ctx.check(
        "3b: the newer attempt's answer is kept: replays show B's, not A's late one",
        replays.every((r) => r.status === 201 && r.body.includes('"attempt":"dedupe"')) && record?.epoch === 2,
        replays.map((r) => `${r.status} ${r.body.slice(0, 60)}`).join(' | '),
      );
      ctx.check(
        '3b: one execution upstream',
        chaos.executions(op.id) === 1,
        `executions ${chaos.executions(op.id)}, deliveries ${chaos.deliveries(op.id)}`,
      );
    }

    // (c) paused before sending: A's markSent is held in the fault proxy until the claim's lease lapsed.
    {
      const op = mkOp('op_s3_c', '/v1/payments');
      const hit = proxy.delayCommand(scriptCall(MARK_SENT), LEASE_MS + 1500);
      const first = post(op, a.listen[0]!);
      await withTimeout(hit, 10_000, "A's markSent reached the fault proxy");
      await sleep(LEASE_MS + 400);
      const byB = await post(op, b.listen[0]!);
      ctx.check(
        '3c: B takes the lapsed, never-sent claim over and sends once',
        byB.status === 201,
        `${byB.status} ${byB.body.slice(0, 100)}`,
      );
      const late = await withTimeout(first, 15_000, 'A answered after its markSent landed');
      ctx.check(
        "3c: A's markSent is refused (stale) and A does not send: 409, not a second execution",
        late.status === 409 && late.body.includes('idempotency_key_in_use') && chaos.deliveries(op.id) === 1,
        `A answered ${late.status} ${late.body.slice(0, 120)}; deliveries ${chaos.deliveries(op.id)}`,
      );
      const replay = await post(op, a.listen[0]!);
      ctx.check("3c: A replays B's answer afterwards", replay.status === 201 && replay.body === byB.body, `${replay.status}`);
    }
    ctx.verdict('pauses', await checker.verify(chaos, store));
  },
};
