// Loss on ONE master of a Redis Cluster (DESIGN §3.12, "Hardened": the loss is detected inside the
// claiming step, on every Cluster master). An agent's records live in one hash slot
// (`wg:{live:<agent>}:…`); FLUSHALL on the master owning that slot, while the other masters keep
// their data, must make the next write of that agent fail closed (503 store_unavailable, upstream
// untouched) — not run a completed write again. The whole store then fails closed until an
// operator's `store ack` (one decision, not a store half trusted). `store init` writes what the
// claiming step checks (one sentinel per slot).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { createRedisStore, initStore } from '../../src/store/index.js';
import { expectProblem, post } from '../helpers/problem.js';
import { redisStoreConfig, startCluster, type TestCluster } from '../helpers/redis.js';
import { rawRedis } from '../helpers/store-safety.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';

let cluster: TestCluster;
let up: CountingUpstream;
const raws: Redis[] = [];

before(async () => {
  cluster = await startCluster();
  up = await startUpstream((req, res) => {
    res.writeHead(201, { 'content-type': 'application/json', 'request-id': `req_${up.received.length}` });
    res.end(JSON.stringify({ id: `pay_${up.received.length}`, url: req.url }));
  });
});

after(async () => {
  await up?.close();
  for (const r of raws) r.disconnect();
  await cluster?.stop();
});

/** The hash tag of an agent's records (namespace `live`): CLUSTER KEYSLOT of it is their slot. */
function tag(agent: string): string {
  return `{live:${agent}}`;
}

/** Two agents whose slots live on different masters (and, optionally, a master to avoid for A). */
async function twoAgents(avoidForA?: number): Promise<{ a: string; aPort: number; b: string }> {
  let a: string | null = null;
  let aPort = 0;
  for (let i = 0; i < 64; i++) {
    const agent = `agent-${i}`;
    const port = (await cluster.ownerOf(tag(agent))).port;
    if (a === null) {
      if (port === avoidForA) continue;
      a = agent;
      aPort = port;
    } else if (port !== aPort) {
      return { a, aPort, b: agent };
    }
  }
  throw new Error('no two agents on different masters among 64 candidates');
}

async function guard(keyPrefix: string, checkIntervalMs?: number): Promise<RunningWriteguard> {
  const wg = await startWriteguard(
    {
      // The store's own detection of the loss: no in-process replays (replay-cache.test.ts covers those across a loss).
      store: { kind: 'redis', url: cluster.nodes[0]!.url, keyPrefix, cluster: cluster.seeds, replayCacheBytes: 0 },
      identity: { agentIdHeader: 'x-agent-id' },
      upstreams: [{ name: 'pay', target: up.url, timeoutMs: 2000, idempotency: { leaseMs: 2500 } }],
    },
    checkIntervalMs === undefined ? {} : { store: (storeConfig, log) => createRedisStore(storeConfig, log, { checkIntervalMs }) },
  );
  assert.equal(await wg.server.store.whenReady(10_000), true, 'the cluster store is ready after `store init`');
  return wg;
}

async function initialise(keyPrefix: string): Promise<void> {
  await initStore(redisStoreConfig(cluster.nodes[0]!.url, { keyPrefix, cluster: cluster.seeds }));
}

function pay(wg: RunningWriteguard, agent: string, key: string, body = '{"amount":100}'): Promise<Response> {
  return post(`${wg.url}/v1/pay-${agent}`, body, { 'idempotency-key': key, 'x-agent-id': agent });
}

test("FLUSHALL on the master owning agent A's slot (periodic check slowed to 60 s): A's next write is refused at once, and the store fails closed for B too", async () => {
  const prefix = 'cl1:';
  await initialise(prefix);
  const { a, aPort, b } = await twoAgents();
  const wg = await guard(prefix, 60_000);
  try {
    for (const agent of [a, b]) {
      const res = await pay(wg, agent, `K-${agent}`);
      assert.equal(res.status, 201, await res.text());
      assert.equal(up.count(`/v1/pay-${agent}`), 1);
    }

    const owner = cluster.nodes.find((n) => n.port === aPort)!;
    await rawRedis(owner.url, raws).flushall();

    // The very next write of A — its completed key — is refused by the claiming step itself.
    const retry = await pay(wg, a, `K-${a}`);
    const seen = `${retry.status} ${await retry.clone().text()}`;
    assert.equal(up.count(`/v1/pay-${a}`), 1, `A's completed write must not run again (answered ${seen})`);
    assert.equal(retry.headers.get('x-should-retry'), 'true');
    await expectProblem(retry, 503, 'store_unavailable');
    // A new key of A as well: A's slot lost its data.
    const fresh = await pay(wg, a, `K2-${a}`, '{"amount":7}');
    const seenFresh = `${fresh.status} ${await fresh.clone().text()}`;
    assert.equal(up.count(`/v1/pay-${a}`), 1, `nothing of A may run on its emptied master (answered ${seenFresh})`);
    await expectProblem(fresh, 503, 'store_unavailable');

    // A partial loss fails the whole store closed (one decision for the operator to acknowledge):
    // B's master kept its data, but nothing of B runs either until `store ack`.
    const blocked = await pay(wg, b, `K2-${b}`, '{"amount":8}');
    await expectProblem(blocked, 503, 'store_unavailable');
    assert.equal(up.count(`/v1/pay-${b}`), 1);
    assert.equal(up.count(`/v1/pay-${a}`), 1);
  } finally {
    await wg.close();
  }
});

test("FLUSHALL on a master that does not hold the single `<prefix>sentinel` key, default check interval: A's completed key still never runs again", async () => {
  const prefix = 'cl2:';
  await initialise(prefix);
  // Today's single sentinel lives in one slot; A is put on another master, so only a per-master
  // (per-slot) check inside the claiming step can see the loss — no periodic check of one key can.
  const sentinelPort = (await cluster.ownerOf(`${prefix}sentinel`)).port;
  const { a, aPort } = await twoAgents(sentinelPort);
  const wg = await guard(prefix);
  try {
    const first = await pay(wg, a, `L-${a}`);
    assert.equal(first.status, 201, await first.text());
    const before = up.count(`/v1/pay-${a}`);

    await rawRedis(cluster.nodes.find((n) => n.port === aPort)!.url, raws).flushall();
    await sleep(2500); // several periodic checks (about one a second)

    const retry = await pay(wg, a, `L-${a}`);
    const seen = `${retry.status} ${await retry.clone().text()}`;
    assert.equal(up.count(`/v1/pay-${a}`), before, `A's completed write must not run again (answered ${seen})`);
    await expectProblem(retry, 503, 'store_unavailable');
  } finally {
    await wg.close();
  }
});
