// 5. A local Redis Cluster of 3 masters (redis-server --cluster-enabled yes ×3 + redis-cli --cluster
// create), two writeguard processes configured with its seed nodes: concurrent duplicates of each
// write through both instances → one execution; every key of an agent in one slot (its hash tag),
// agents spread over the masters; dead letters found across masters.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { createRedisStore } from '../../../src/store/index.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../../helpers/redis.js';
import { startChaosUpstream } from '../lib/chaos-upstream.js';
import { endOf, SECRETS, type Op } from '../lib/checker.js';
import { wgConfig } from '../lib/config.js';
import { faultPlan } from '../lib/faults.js';
import { sleep, startWg, until } from '../lib/procs.js';
import type { Scenario } from '../lib/scenario.js';

const run = promisify(execFile);
const AGENTS = 8;
const KEYS_PER_AGENT = 3;
const COPIES = 4;

export const s05: Scenario = {
  id: '5',
  title: 'Redis Cluster (3 masters): duplicates, hash tags',
  limitMs: 90_000,
  async run(ctx) {
    const nodes: RedisServer[] = [];
    ctx.defer(() => Promise.all(nodes.map((n) => n.stop())));
    for (let i = 0; i < 3; i++)
      nodes.push(
        await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }),
      );
    await run(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { timeout: 15_000 },
    );
    const ok = await until(
      async () => {
        const infos = await Promise.all(
          nodes.map((n) => run('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { timeout: 2000 }).then((r) => r.stdout)),
        );
        return infos.every((i) => i.includes('cluster_state:ok'));
      },
      15_000,
      100,
    );
    ctx.check('the cluster of 3 masters is up (cluster_state:ok)', ok);
    const cluster = nodes.map((n) => ({ host: '127.0.0.1', port: n.port }));

    const chaos = await startChaosUpstream({
      pick: faultPlan(ctx.seed, { normal: 2, slow: 6, hang: 1, destroy: 1, r429: 0, r503: 0, r503exec: 0, drip: 0 }, 's5'),
      hangMs: 2500,
      bodySecret: SECRETS.body,
    });
    ctx.defer(() => chaos.close());
    const config = wgConfig({ redisUrl: nodes[0]!.url, cluster, chaosUrl: chaos.url, timeoutMs: 2000, stripePort: null });
    const wgs = await Promise.all([startWg('5', 'wg-a', config), startWg('5', 'wg-b', config)]);
    ctx.defer(() => Promise.all(wgs.map((w) => w.stop())));
    const bases = wgs.map((w) => w.listen[0]!);
    const checker = ctx.checker();

    // Every key sent COPIES times at once, alternating instances; each copy retries 409 in_use.
    const ops: Op[] = [];
    for (let a = 0; a < AGENTS; a++) {
      for (let k = 0; k < KEYS_PER_AGENT; k++) {
        ops.push(
          checker.op({
            id: `op_s5_a${a}_k${k}`,
            agent: `cluster-agent-${a}`,
            client: 'fetch',
            upstream: 'pay',
            bases,
            path: '/v1/payments',
            keySource: 'client',
            key: `s5-${a}-${k}-${randomUUID()}`,
          }),
        );
      }
    }
    await Promise.all(
      ops.flatMap((op) =>
        Array.from({ length: COPIES }, async (_, c) => {
          const f = checker.fetchFor(op);
          for (let attempt = 0; attempt < 8; attempt++) {
            const res = await f(`${bases[(c + attempt) % 2]}${op.path}`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'idempotency-key': op.key! },
              body: JSON.stringify({ op: op.id, amount: 500 }),
              signal: AbortSignal.timeout(10_000),
            }).then(
              async (r) => (await r.arrayBuffer(), r.status),
              () => 0,
            );
            if (res !== 409 && res !== 503 && res !== 0) return;
            await sleep(300 + 100 * attempt);
          }
        }),
      ),
    );
    await checker.settle({ rounds: 8 });

    const store = createRedisStore(redisStoreConfig(nodes[0]!.url, { cluster }));
    ctx.defer(() => store.close());
    await store.whenReady(5000);
    ctx.verdict('cluster', await checker.verify(chaos, store));
    ctx.check(
      `concurrent copies (${COPIES} per key, both instances) ran once each`,
      ops.every((op) => chaos.executions(op.id) <= 1) && chaos.duplicateKeys().length === 0,
    );

    // Where the keys live: each hash tag on exactly one master; the agents spread over the masters.
    const tagsByNode = await Promise.all(
      nodes.map(async (n) => {
        const client = new Redis(n.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
        client.on('error', () => undefined);
        try {
          await client.connect();
          const tags = new Set<string>();
          let cursor = '0';
          for (let i = 0; i < 1000; i++) {
            const [next, keys] = await client.scan(cursor, 'MATCH', 'wg:{*', 'COUNT', 1000);
            for (const k of keys) tags.add(/\{([^}]*)\}/.exec(k)?.[1] ?? '?');
            cursor = next;
            if (cursor === '0') break;
          }
          return tags;
        } finally {
          client.disconnect();
        }
      }),
    );
    const seen = new Map<string, number>();
    for (const tags of tagsByNode) for (const t of tags) seen.set(t, (seen.get(t) ?? 0) + 1);
    const split = [...seen].filter(([, n]) => n > 1).map(([t]) => t);
    ctx.check(
      'every key of an agent lives on one master (one hash tag, one slot)',
      seen.size >= AGENTS && split.length === 0,
      `tags ${seen.size}, split ${split.join(',')}`,
    );
    ctx.check(
      'the agents are spread over the masters',
      tagsByNode.filter((t) => t.size > 0).length >= 2,
      tagsByNode.map((t) => t.size).join('/'),
    );
    const unknown = checker.ops.filter((op) => endOf(op).kind === 'unknown').length;
    const letters = await store.deadLetters(1000);
    ctx.check(
      `dead letters are listed across masters (${letters.length} listed, ${unknown} ops ended outcome_unknown)`,
      letters.length === unknown,
    );
  },
};
