// 11. Store loss with the default store config (`initOnEmpty` off: the store is initialised by the
// real `writeguard store init`), a Redis without persistence, two writeguards, agents sending keyed
// and keyless writes:
//  a) FLUSHALL under load: the very next claim is refused on both instances (no timer window), every
//     write gets 503 store_unavailable until the real `writeguard store ack` (a `store init` on the
//     emptied store does not count), nothing reaches the upstream meanwhile; after the ack new writes
//     run. A write completed before the loss and retried after the ack may run again: the documented
//     limit the operator accepts with the ack — counted apart ("re-run after ack"), never before it.
//  b) Redis restarted empty, then both writeguards restarted (SIGTERM, start again, same config and
//     ports): the new processes stay unready and refuse writes, never adopt the empty store (no
//     sentinel appears), retries of completed writes do not run; `store ack` → ready.
//  c) Eviction switched on at run time (maxmemory 4mb, volatile-lru): within seconds writes are
//     refused (503) and /readyz says why (maxmemory-policy); back to noeviction → writes flow again
//     without an ack, and completed writes retried replay (no second execution).
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createRedisStore } from '../../../src/store/index.js';
import { writeConfigFile } from '../../helpers/config-file.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../../helpers/redis.js';
import { runLoad } from '../lib/agents.js';
import { startChaosUpstream, type ChaosUpstream } from '../lib/chaos-upstream.js';
import { agentHeaders, endOf, SECRETS, type Checker, type Op } from '../lib/checker.js';
import { targetsOf, wgConfig } from '../lib/config.js';
import { faultPlan } from '../lib/faults.js';
import { ready, runCli, sleep, startWg, until, type WgProc } from '../lib/procs.js';
import type { Scenario, ScenarioContext } from '../lib/scenario.js';

const MIX = { normal: 6, slow: 4, hang: 0, destroy: 0, r429: 1, r503: 0, r503exec: 0, drip: 0 };
/** The test's own key prefix (the operator commands must honour the config's). */
const PREFIX = 'wgs11:';
/** An attempt whose markSent ran just before the loss reaches the upstream just after it. */
const IN_FLIGHT_GRACE_MS = 250;

/** One Redis command on a connection of its own, bounded in time. */
async function redisCall(url: string, command: string, ...args: string[]): Promise<unknown> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(command, ...args);
  } finally {
    client.disconnect();
  }
}

async function readyz(wg: WgProc): Promise<{ status: number; store: string; detail: string }> {
  try {
    const r = await fetch(`${wg.admin}/readyz`, { signal: AbortSignal.timeout(2000) });
    const body = (await r.json()) as { store?: string; detail?: string };
    return { status: r.status, store: body.store ?? '', detail: body.detail ?? '' };
  } catch (err) {
    return { status: 0, store: '', detail: (err as Error).message };
  }
}

const portOf = (url: string): number => Number(new URL(url).port);

/** Executions of an op that reached the upstream in [from, to). */
function executedBetween(chaos: ChaosUpstream, from: number, to: number): string[] {
  return chaos.arrivals.filter((a) => a.executed && a.at >= from && a.at < to).map((a) => a.op ?? a.key ?? '?');
}

/** Ops that ran and were answered 2xx: completed, their record in the store (until a loss). */
function completed(checker: Checker, chaos: ChaosUpstream): Op[] {
  return checker.ops.filter((op) => endOf(op).kind === 'final' && chaos.executions(op.id) > 0);
}

const answerOf = (op: Op): string => {
  const last = op.exchanges.at(-1);
  if (last === undefined) return 'none';
  return last.status === null
    ? `error ${last.error}`
    : `${last.status}${last.replayed ? ' replayed' : ''}${last.code === null ? '' : ` ${last.code}`}`;
};

function tally(answers: string[]): string {
  const counts = new Map<string, number>();
  for (const a of answers) counts.set(a, (counts.get(a) ?? 0) + 1);
  return [...counts].map(([a, n]) => `${n}× ${a}`).join(', ');
}

let probeSeq = 0;

/**
 * Fresh writes to every instance at once, one keyed and one keyless each; outside the ledger (their
 * exchanges count for the log check). Answers as "status code" and how many reached the upstream.
 */
async function probe(
  side: Checker,
  chaos: ChaosUpstream,
  wgs: WgProc[],
): Promise<{ answers: string[]; delivered: number; executed: number; ids: string[]; maxMs: number }> {
  const ids: string[] = [];
  const started = Date.now();
  let maxMs = 0;
  const answers = await Promise.all(
    wgs.flatMap((wg) =>
      [true, false].map(async (keyed) => {
        const id = `op_s11_probe_${++probeSeq}_${keyed ? 'keyed' : 'keyless'}`;
        ids.push(id);
        const headers: Record<string, string> = { ...agentHeaders('agent-probe'), 'content-type': 'application/json' };
        if (keyed) headers['idempotency-key'] = randomUUID();
        return side.traffic
          .fetchFor(null)(`${wg.listen[0]}/v1/payments`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ op: id, amount: 110 }),
            signal: AbortSignal.timeout(10_000),
          })
          .then(
            async (r) => `${r.status} ${((await r.json()) as { code?: string }).code ?? ''}`.trim(),
            (e: Error) => `error ${e.message}`,
          )
          .finally(() => (maxMs = Math.max(maxMs, Date.now() - started)));
      }),
    ),
  );
  return {
    answers,
    ids,
    maxMs,
    delivered: ids.reduce((n, id) => n + chaos.deliveries(id), 0),
    executed: ids.reduce((n, id) => n + chaos.executions(id), 0),
  };
}

/** Every completed op sent again (same key and bytes, keyless as intent retry): answers and new deliveries. */
async function retryAll(checker: Checker, chaos: ChaosUpstream, ops: Op[]): Promise<{ answers: string[]; newDeliveries: number }> {
  const before = ops.map((op) => chaos.deliveries(op.id));
  await Promise.all(ops.map((op, i) => checker.resend(op, op.bases[(i + 1) % op.bases.length]!)));
  return { answers: ops.map(answerOf), newDeliveries: ops.reduce((n, op, i) => n + chaos.deliveries(op.id) - before[i]!, 0) };
}

async function verdict(ctx: ScenarioContext, checker: Checker, chaos: ChaosUpstream, redis: RedisServer, label: string): Promise<void> {
  await checker.settle({ rounds: 12, pauseMs: 500 });
  const store = createRedisStore(redisStoreConfig(redis.url, { keyPrefix: PREFIX }));
  try {
    if (!(await store.whenReady(5000)))
      throw new Error(`${label}: the verifying store did not become ready (${store.notReadyReason()?.detail})`);
    ctx.verdict(label, await checker.verify(chaos, store));
  } finally {
    await store.close();
  }
}

/**
 * The documented limit, counted apart from the ledger: each op completed before the loss is retried
 * after the ack, once on each instance, as a copy in a side checker. It may run again — once, after
 * the ack, never before it (the instance that wrote it replays it from its memory; the other has only
 * the store, which forgot it) — and then its record is back: a third retry replays.
 */
async function rerunAfterAck(
  ctx: ScenarioContext,
  chaos: ChaosUpstream,
  ops: Op[],
  lossAt: number,
  ackAt: number,
  label: string,
): Promise<void> {
  const side = ctx.checker();
  const copies = ops.map((op) => {
    const copy = side.op({
      id: op.id,
      agent: op.agent,
      client: op.client,
      upstream: op.upstream,
      bases: op.bases,
      path: op.path,
      keySource: op.keySource,
      key: op.keySource === 'client' ? op.key : null,
      headers: op.headers,
    });
    copy.sentBody = op.sentBody;
    copy.contentType = op.contentType;
    return copy;
  });
  const before = ops.map((op) => chaos.executions(op.id));
  await Promise.all(copies.map((c, i) => side.resend(c, c.bases[i % c.bases.length]!)));
  const first = copies.map(answerOf);
  const afterFirst = ops.map((op) => chaos.executions(op.id));
  await Promise.all(copies.map((c, i) => side.resend(c, c.bases[(i + 1) % c.bases.length]!)));
  const second = copies.map(answerOf);
  const afterSecond = ops.map((op) => chaos.executions(op.id));
  await Promise.all(copies.map((c, i) => side.resend(c, c.bases[i % c.bases.length]!)));
  const third = copies.map(answerOf);
  const afterThird = ops.map((op) => chaos.executions(op.id));

  const reRun = ops.filter((_, i) => afterSecond[i]! > before[i]!);
  const problems: string[] = [];
  ops.forEach((op, i) => {
    if (before[i] !== 1) problems.push(`${op.id}: ${before[i]} executions before the retry`);
    if (afterSecond[i]! - before[i]! > 1) problems.push(`${op.id}: ran ${afterSecond[i]! - before[i]!} more times after the ack`);
    // Every execution but the first happened after the ack; the first before the loss.
    const execs = chaos.arrivals
      .filter((a) => a.op === op.id && a.executed)
      .map((a) => a.at)
      .sort((x, y) => x - y);
    if (execs[0] !== undefined && execs[0] >= lossAt + IN_FLIGHT_GRACE_MS) problems.push(`${op.id}: first execution after the loss`);
    for (const at of execs.slice(1)) if (at < ackAt) problems.push(`${op.id}: ran again ${ackAt - at} ms BEFORE the ack`);
    if (afterFirst[i]! > before[i]! && !/^2\d\d/.test(first[i]!)) problems.push(`${op.id}: re-ran but answered ${first[i]}`);
    if (afterSecond[i]! > afterFirst[i]! && !/^2\d\d/.test(second[i]!)) problems.push(`${op.id}: re-ran but answered ${second[i]}`);
  });
  ctx.check(
    `${label}: writes completed before the loss run again only after the ack, at most once (documented limit: ${reRun.length} of ${ops.length} re-ran)`,
    ops.length > 0 && problems.length === 0,
    `${problems.slice(0, 6).join('; ')} | first retry: ${tally(first)}; second: ${tally(second)}`,
  );
  const reRunIdx = ops.map((_, i) => i).filter((i) => afterSecond[i]! > before[i]!);
  ctx.check(
    `${label}: a write re-run after the ack is remembered again (its next retry replays)`,
    reRunIdx.every((i) => / replayed/.test(third[i]!)) && ops.every((_, i) => afterThird[i] === afterSecond[i]),
    `third retry: ${tally(third)}`,
  );
  ctx.note(
    `${label}: re-run after ack (documented): ${reRun.length} of ${ops.length} writes completed before the loss ran again when retried after \`writeguard store ack\` ` +
      `(first retry, on one instance: ${tally(first)}; second, on the other: ${tally(second)}); outside the duplicate count`,
  );
}

export const s11: Scenario = {
  id: '11',
  title: 'store loss: FLUSHALL, empty restart, eviction policy',
  limitMs: 120_000,
  async run(ctx) {
    const chaos = await startChaosUpstream({ pick: faultPlan(ctx.seed, MIX, 's11'), bodySecret: SECRETS.body });
    ctx.defer(() => chaos.close());
    const redis = await startRedis({ appendonly: false });
    ctx.defer(() => redis.stop());
    const side = ctx.checker();

    // Default store config (initOnEmpty off, allowEviction off) but the test's prefix and ports.
    const config = (ports?: { main: number; stripe: number; admin: number }) =>
      wgConfig({
        redisUrl: redis.url,
        chaosUrl: chaos.url,
        timeoutMs: 1500,
        leaseMs: 2500,
        initOnEmpty: false,
        keyPrefix: PREFIX,
        ...(ports === undefined ? {} : { mainPort: ports.main, stripePort: ports.stripe, adminPort: ports.admin }),
      });
    const operatorFile = writeConfigFile(config());
    ctx.defer(() => operatorFile.remove());
    const cli = (cmd: 'init' | 'ack') => runCli(['store', cmd, '--config', operatorFile.path], {});

    const init = cli('init');
    ctx.check(
      'setup: `writeguard store init --config` (the real CLI) initialises the new store',
      init.status === 0 && /store initialised/.test(init.stdout),
      `${init.status} ${init.stdout.trim()} ${init.stderr.slice(0, 200)}`,
    );
    let wgs: WgProc[] = await Promise.all([startWg('11', 'wg-a', config()), startWg('11', 'wg-b', config())]);
    const all: WgProc[] = [...wgs];
    ctx.defer(() => Promise.all(all.map((w) => w.stop())));
    ctx.check(
      'setup: both instances ready on the initialised store',
      await until(async () => (await ready(wgs[0]!)) && (await ready(wgs[1]!)), 5000),
    );
    const bothReady = () => until(async () => (await ready(wgs[0]!)) && (await ready(wgs[1]!)), 10_000);
    const bothUnready = (ms: number) => until(async () => !(await ready(wgs[0]!)) && !(await ready(wgs[1]!)), ms);

    // ---- a) FLUSHALL under load ------------------------------------------------------------------
    {
      const checker = ctx.checker();
      const load = runLoad(checker, targetsOf(wgs), ctx.rng.fork('flush'), {
        agents: 6,
        prefix: 's11fl',
        stopAt: Date.now() + 8000,
        retryRounds: 25,
        retryPauseMs: 400,
        timeoutMs: 4000,
      });
      await sleep(3000);
      await redisCall(redis.url, 'FLUSHALL');
      const lossAt = Date.now();
      // At once, before any timer check could run: the claim itself sees the sentinel gone.
      const first = await probe(side, chaos, wgs);
      ctx.check(
        'FLUSHALL: the very next writes on both instances get 503 store_unavailable, nothing sent (keyed and keyless)',
        first.answers.every((a) => a === '503 store_unavailable') && first.delivered === 0,
        `${first.answers.join(', ')}; delivered ${first.delivered}`,
      );
      ctx.note(`FLUSHALL: the first refused writes were sent right after the flush and answered within ${first.maxMs} ms`);
      const unready = await bothUnready(3000);
      const why = await readyz(wgs[0]!);
      ctx.check(
        'FLUSHALL: both instances turn unready (/readyz 503, sentinel_missing)',
        unready && why.status === 503 && why.store === 'sentinel_missing',
        `${why.status} ${why.store}: ${why.detail}`,
      );
      await sleep(800); // the writes in flight at the flush have come back
      const done = completed(checker, chaos);
      const pre = await retryAll(checker, chaos, done);
      ctx.check(
        `FLUSHALL: retries of the ${done.length} writes completed before the loss are refused before the ack (503, nothing sent)`,
        done.length > 0 && pre.answers.every((a) => a === '503 store_unavailable') && pre.newDeliveries === 0,
        `${tally(pre.answers)}; new deliveries ${pre.newDeliveries}`,
      );
      // An operator's `store init` on the emptied store is not an acknowledgement: instances that saw the loss stay closed.
      const reinit = cli('init');
      await sleep(1500);
      const afterInit = await probe(side, chaos, wgs);
      const stillWhy = await readyz(wgs[1]!);
      ctx.check(
        'FLUSHALL: `store init` on the emptied store does not reopen writes (only ack does)',
        reinit.status === 0 &&
          afterInit.answers.every((a) => a === '503 store_unavailable') &&
          afterInit.delivered === 0 &&
          stillWhy.status === 503,
        `init ${reinit.status} ${reinit.stdout.trim()}; ${afterInit.answers.join(', ')}; readyz ${stillWhy.status} ${stillWhy.store}`,
      );
      const ack = cli('ack');
      const ackAt = Date.now();
      ctx.check(
        'FLUSHALL: `writeguard store ack --config` (the real CLI) exits 0',
        ack.status === 0,
        `${ack.status} ${ack.stdout.trim()} ${ack.stderr.slice(0, 200)}`,
      );
      ctx.check('FLUSHALL: after the ack both instances are ready again', await bothReady());
      const fresh = await probe(side, chaos, wgs);
      ctx.check(
        'FLUSHALL: after the ack new writes run (201, once each)',
        fresh.answers.every((a) => a.startsWith('201')) && fresh.executed === fresh.ids.length,
        `${fresh.answers.join(', ')}; executed ${fresh.executed}`,
      );
      const leaked = executedBetween(chaos, lossAt + IN_FLIGHT_GRACE_MS, ackAt);
      ctx.check('FLUSHALL: nothing reached the upstream between the loss and the ack', leaked.length === 0, leaked.slice(0, 6).join(', '));
      ctx.note(
        `FLUSHALL: ${executedBetween(chaos, lossAt - 1, lossAt + IN_FLIGHT_GRACE_MS).length} attempts sent just before the flush reached the upstream within ${IN_FLIGHT_GRACE_MS} ms of it`,
      );
      await load;
      await verdict(ctx, checker, chaos, redis, 'FLUSHALL');
      await rerunAfterAck(ctx, chaos, done, lossAt, ackAt, 'FLUSHALL');
    }

    // ---- b) Redis restarted empty, then both writeguards restarted ------------------------------
    {
      const checker = ctx.checker();
      const load = runLoad(checker, targetsOf(wgs), ctx.rng.fork('restart'), {
        agents: 6,
        prefix: 's11rs',
        stopAt: Date.now() + 3500,
        retryRounds: 3,
        retryPauseMs: 300,
        timeoutMs: 4000,
      });
      await sleep(1800);
      const sample = completed(checker, chaos).slice(0, 3);
      const pre = await retryAll(checker, chaos, sample);
      ctx.check(
        `restart: before the loss, retries of completed writes replay (${sample.length} checked)`,
        sample.length > 0 && pre.answers.every((a) => / replayed/.test(a)) && pre.newDeliveries === 0,
        tally(pre.answers),
      );
      const lossAt = Date.now();
      await redis.restart();
      const keys = await redisCall(redis.url, 'DBSIZE');
      ctx.check('restart: Redis came back empty (no persistence)', keys === 0, `DBSIZE ${String(keys)}`);
      await load;
      await sleep(800);
      const done = completed(checker, chaos);
      const ports = wgs.map((w) => ({ main: portOf(w.listen[0]!), stripe: portOf(w.listen[1]!), admin: portOf(w.admin) }));
      const codes = await Promise.all(wgs.map((w) => w.stop()));
      ctx.check(
        'restart: both writeguards exit 0 on SIGTERM',
        codes.every((c) => c === 0),
        codes.join(', '),
      );
      // The same default config and ports: the agents' retries reach the new processes.
      wgs = await Promise.all(ports.map((p, i) => startWg('11', `wg-${'ab'[i]}-restarted`, config(p))));
      all.push(...wgs);
      await sleep(2500); // more than two sentinel checks
      const states = await Promise.all(wgs.map(readyz));
      const sentinel = await redisCall(redis.url, 'GET', `${PREFIX}sentinel`);
      ctx.check(
        'restart: the new processes stay unready on the empty store (/readyz 503 not_initialised) and never adopt it (no sentinel written)',
        states.every((s) => s.status === 503 && s.store === 'not_initialised') && sentinel === null,
        `${states.map((s) => `${s.status} ${s.store}`).join(', ')}; sentinel ${String(sentinel)}`,
      );
      const refused = await probe(side, chaos, wgs);
      ctx.check(
        'restart: the new processes refuse writes (503 store_unavailable, nothing sent)',
        refused.answers.every((a) => a === '503 store_unavailable') && refused.delivered === 0,
        `${refused.answers.join(', ')}; delivered ${refused.delivered}`,
      );
      ctx.note(`restart: refused writes answered within ${refused.maxMs} ms`);
      const retried = await retryAll(checker, chaos, done);
      ctx.check(
        `restart: retries of the ${done.length} writes completed before the loss do not run (503, nothing sent)`,
        done.length > 0 && retried.answers.every((a) => a === '503 store_unavailable') && retried.newDeliveries === 0,
        `${tally(retried.answers)}; new deliveries ${retried.newDeliveries}`,
      );
      const ack = cli('ack');
      const ackAt = Date.now();
      ctx.check(
        'restart: `writeguard store ack --config` (the real CLI) exits 0',
        ack.status === 0,
        `${ack.status} ${ack.stdout.trim()} ${ack.stderr.slice(0, 200)}`,
      );
      ctx.check('restart: after the ack both new processes are ready', await bothReady());
      const fresh = await probe(side, chaos, wgs);
      ctx.check(
        'restart: after the ack new writes run (201, once each)',
        fresh.answers.every((a) => a.startsWith('201')) && fresh.executed === fresh.ids.length,
        `${fresh.answers.join(', ')}; executed ${fresh.executed}`,
      );
      const leaked = executedBetween(chaos, lossAt + IN_FLIGHT_GRACE_MS, ackAt);
      ctx.check('restart: nothing reached the upstream between the loss and the ack', leaked.length === 0, leaked.slice(0, 6).join(', '));
      await verdict(ctx, checker, chaos, redis, 'restart');
      await rerunAfterAck(ctx, chaos, done, lossAt, ackAt, 'restart');
    }

    // ---- c) an eviction policy switched on at run time --------------------------------------------
    {
      const checker = ctx.checker();
      const load = runLoad(checker, targetsOf(wgs), ctx.rng.fork('evict'), {
        agents: 4,
        prefix: 's11ev',
        stopAt: Date.now() + 7000,
        retryRounds: 20,
        retryPauseMs: 400,
        timeoutMs: 4000,
      });
      await sleep(2000);
      const done = completed(checker, chaos);
      const memory = String(await redisCall(redis.url, 'INFO', 'memory'));
      const used = /used_memory:(\d+)/.exec(memory)?.[1] ?? '?';
      await redisCall(redis.url, 'CONFIG', 'SET', 'maxmemory', '4mb');
      await redisCall(redis.url, 'CONFIG', 'SET', 'maxmemory-policy', 'volatile-lru');
      const switchedAt = Date.now();
      const refusedIn = (await bothUnready(5000)) ? Date.now() - switchedAt : null;
      const why = await Promise.all(wgs.map(readyz));
      ctx.check(
        `evict: within a few seconds both instances turn unready and /readyz says why (${refusedIn ?? '>5000'} ms)`,
        refusedIn !== null && why.every((w) => w.status === 503 && /maxmemory-policy/.test(w.detail)),
        why.map((w) => `${w.status} ${w.store}: ${w.detail}`).join(' | '),
      );
      const refused = await probe(side, chaos, wgs);
      ctx.check(
        'evict: writes are refused (503 store_unavailable, nothing sent)',
        refused.answers.every((a) => a === '503 store_unavailable') && refused.delivered === 0,
        `${refused.answers.join(', ')}; delivered ${refused.delivered}`,
      );
      ctx.note(`evict: refused writes answered within ${refused.maxMs} ms`);
      const during = await retryAll(checker, chaos, done);
      ctx.check(
        `evict: retries of ${done.length} completed writes send nothing while refused`,
        done.length > 0 && during.newDeliveries === 0,
        `${tally(during.answers)}; new deliveries ${during.newDeliveries}`,
      );
      await redisCall(redis.url, 'CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
      const backAt = Date.now();
      const flowing = await until(async () => (await ready(wgs[0]!)) && (await ready(wgs[1]!)), 5000);
      ctx.check(`evict: back to noeviction, both instances ready again without an ack (${Date.now() - backAt} ms)`, flowing);
      const fresh = await probe(side, chaos, wgs);
      ctx.check(
        'evict: writes flow again (201, once each)',
        fresh.answers.every((a) => a.startsWith('201')) && fresh.executed === fresh.ids.length,
        `${fresh.answers.join(', ')}; executed ${fresh.executed}`,
      );
      const after = await retryAll(checker, chaos, done);
      ctx.check(
        `evict: the ${done.length} completed writes retried afterwards replay (no second execution)`,
        after.answers.every((a) => / replayed/.test(a)) && after.newDeliveries === 0,
        `${tally(after.answers)}; new deliveries ${after.newDeliveries}`,
      );
      await load;
      const stats = String(await redisCall(redis.url, 'INFO', 'stats'));
      ctx.note(`evict: used_memory ${used} bytes before the 4 MB limit; evicted_keys ${/evicted_keys:(\d+)/.exec(stats)?.[1] ?? '?'}`);
      await redisCall(redis.url, 'CONFIG', 'SET', 'maxmemory', '0');
      await verdict(ctx, checker, chaos, redis, 'evict');
      // The refusal gates every store step, Finish and release included: a write settling inside the
      // window keeps its claim in phase `sent`, which lapses into outcome_unknown (a dead letter).
      const unknown = checker.ops.filter((op) => endOf(op).kind === 'unknown');
      if (unknown.length > 0) {
        ctx.note(
          `evict: ${unknown.length} writes settling inside the refusal window were dead-lettered (outcome_unknown), ` +
            `${unknown.filter((op) => chaos.executions(op.id) === 0).length} of them never executed upstream (e.g. ${unknown[0]!.id}: ${unknown[0]!.exchanges.map((e) => `${e.status} ${e.code ?? ''}`.trim()).join(' → ')})`,
        );
      }
    }
  },
};
