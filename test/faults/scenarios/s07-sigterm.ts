// 7. SIGTERM under load: readiness 503 at once, new requests refused cleanly (503 draining with
// Connection: close, or connection refused once the listener is closed), the writes in flight finish
// and are recorded (their retries replay on the other instance), exit code 0 within the drain deadline.
import { randomUUID } from 'node:crypto';
import { createRedisStore } from '../../../src/store/index.js';
import { redisStoreConfig, startRedis } from '../../helpers/redis.js';
import { startChaosUpstream, type Fault } from '../lib/chaos-upstream.js';
import { SECRETS, type Op } from '../lib/checker.js';
import { wgConfig } from '../lib/config.js';
import { hashUnit } from '../lib/rng.js';
import { sleep, startWg, until } from '../lib/procs.js';
import type { Scenario } from '../lib/scenario.js';

const TIMEOUT_MS = 3000;
/** cli.ts: the longest upstream timeout plus 5 s. */
const DRAIN_DEADLINE_MS = TIMEOUT_MS + 5000;

export const s07: Scenario = {
  id: '7',
  title: 'SIGTERM under load: drain',
  limitMs: 60_000,
  async run(ctx) {
    const redis = await startRedis();
    ctx.defer(() => redis.stop());
    const chaos = await startChaosUpstream({
      pick: (info): Fault => ({ kind: 'normal', delayMs: 800 + Math.floor(hashUnit(ctx.seed, info.op ?? '', 's7') * 1200) }),
      bodySecret: SECRETS.body,
    });
    ctx.defer(() => chaos.close());
    const config = wgConfig({ redisUrl: redis.url, chaosUrl: chaos.url, timeoutMs: TIMEOUT_MS, stripePort: null });
    const [a, b] = await Promise.all([startWg('7', 'wg-terminated', config), startWg('7', 'wg-other', config)]);
    ctx.defer(() => Promise.all([a.stop(), b.stop()]));
    const checker = ctx.checker();
    const mkOp = (id: string): Op =>
      checker.op({
        id,
        agent: 'agent-7',
        client: 'fetch',
        upstream: 'pay',
        bases: [a.listen[0]!, b.listen[0]!],
        path: '/v1/payments',
        keySource: 'client',
        key: `${id}-${randomUUID()}`,
      });
    const post = (op: Op, base: string) =>
      checker
        .fetchFor(op)(`${base}${op.path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': op.key! },
          body: JSON.stringify({ op: op.id, amount: 700 }),
          signal: AbortSignal.timeout(20_000),
        })
        .then(
          async (r) => ({
            status: r.status,
            connection: r.headers.get('connection'),
            code: r.status >= 400 ? ((await r.json()) as { code?: string }).code : (await r.arrayBuffer(), null),
          }),
          (e: Error & { cause?: { code?: string } }) => ({ status: 0, connection: null, code: e.cause?.code ?? e.message }),
        );

    const inflight = Array.from({ length: 12 }, (_, i) => mkOp(`op_s7_inflight_${i}`));
    const pending = inflight.map((op) => post(op, a.listen[0]!));
    ctx.check('the writes reached the upstream before SIGTERM', await until(() => chaos.arrivals.length >= 8, 10_000));
    const t0 = Date.now();
    a.signal('SIGTERM');
    let settledCount = 0;
    for (const p of pending) void p.then(() => settledCount++);

    const readyDown = await until(
      async () =>
        (await fetch(`${a.admin}/readyz`).then(
          (r) => r.status,
          () => 0,
        )) === 503,
      2000,
      10,
    );
    ctx.check(
      'readiness turns 503 at once (before the writes in flight have finished)',
      readyDown && settledCount < inflight.length,
      `settled before: ${settledCount}/${inflight.length}`,
    );

    const fresh: Array<{ status: number; connection: string | null; code: string | null | undefined }> = [];
    const freshOps: Op[] = [];
    for (let i = 0; i < 5; i++) {
      const op = mkOp(`op_s7_new_${i}`);
      freshOps.push(op);
      fresh.push(await post(op, a.listen[0]!));
      await sleep(100);
    }
    ctx.check(
      'new requests are refused cleanly: 503 draining (Connection: close) or connection refused; none reaches the upstream',
      fresh.every(
        (f) => (f.status === 503 && f.code === 'draining' && f.connection === 'close') || (f.status === 0 && f.code === 'ECONNREFUSED'),
      ) && freshOps.every((op) => chaos.deliveries(op.id) === 0),
      fresh.map((f) => `${f.status} ${f.code}`).join(', '),
    );

    const answers = await Promise.all(pending);
    ctx.check(
      "every write in flight finishes with the upstream's 201",
      answers.every((r) => r.status === 201),
      answers.map((r) => r.status).join(','),
    );
    const code = await a.exited;
    const tookMs = Date.now() - t0;
    ctx.check(
      `exit code 0 within the drain deadline (${DRAIN_DEADLINE_MS} ms)`,
      code === 0 && tookMs <= DRAIN_DEADLINE_MS + 2000,
      `exit ${code} after ${tookMs} ms; stderr: ${a.stderr().slice(0, 200)}`,
    );

    // Recorded: their retries on the other instance replay, nothing runs again.
    const replays = await Promise.all(
      inflight.map(async (op) => {
        const res = await checker.fetchFor(op)(`${b.listen[0]}${op.path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': op.key! },
          body: JSON.stringify({ op: op.id, amount: 700 }),
        });
        await res.arrayBuffer();
        return res.headers.get('idempotent-replayed') === 'true';
      }),
    );
    ctx.check(
      'the drained writes were recorded: their retries replay on the other instance',
      replays.every(Boolean),
      `${replays.filter(Boolean).length}/${replays.length}`,
    );
    const store = createRedisStore(redisStoreConfig(redis.url));
    ctx.defer(() => store.close());
    await store.whenReady(5000);
    await checker.settle({ rounds: 6 });
    ctx.verdict('drain', await checker.verify(chaos, store));
  },
};
