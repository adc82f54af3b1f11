// Several instances initialising one empty Redis Cluster at the same moment (initOnEmpty) agree on
// one sentinel: every one of the 16,384 slots holds the same value, and every instance is ready
// with it. (Found by the fleet budget test: each racer wrote its own value, slot by slot, leaving a
// mix that refused every write to half the slots.)
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster } from 'ioredis';
import { createRedisStore, type RedisStore } from '../../src/store/index.js';
import { allSlotSentinelKeys } from '../../src/store/redis/slot-sentinels.js';
import { redisStoreConfig, startCluster, type TestCluster } from '../helpers/redis.js';

let cluster: TestCluster;
const INSTANCES = 6;

before(async () => {
  cluster = await startCluster();
});
after(async () => {
  await cluster?.stop();
});

/** Every slot sentinel's value, counted (each of the 16,384 keys read through a Cluster client). */
async function sentinelValues(prefix: string): Promise<Map<string, number>> {
  const client = new Cluster(cluster.seeds, { lazyConnect: false });
  try {
    const counts = new Map<string, number>();
    const keys = allSlotSentinelKeys(prefix);
    for (let i = 0; i < keys.length; i += 1024) {
      for (const v of await Promise.all(keys.slice(i, i + 1024).map((k) => client.get(k))))
        counts.set(String(v), (counts.get(String(v)) ?? 0) + 1);
    }
    return counts;
  } finally {
    client.disconnect();
  }
}

test('six instances racing to initialise an empty Cluster end with one sentinel in every slot, all ready', async () => {
  for (let round = 0; round < 4; round++) {
    const prefix = `race${round}:`;
    const config = redisStoreConfig(cluster.nodes[0]!.url, {
      keyPrefix: prefix,
      initOnEmpty: true,
      cluster: cluster.seeds,
      commandTimeoutMs: 5000,
    });
    const stores: RedisStore[] = Array.from({ length: INSTANCES }, () => createRedisStore(config));
    try {
      const ready = await Promise.all(stores.map((s) => s.whenReady(30_000)));
      assert.ok(ready.every(Boolean), `round ${round}: every instance ready`);
      const values = await sentinelValues(prefix);
      assert.equal(values.size, 1, `round ${round}: one sentinel value across the slots, found ${JSON.stringify([...values])}`);
      assert.equal([...values.values()][0], 16_384);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  }
});
