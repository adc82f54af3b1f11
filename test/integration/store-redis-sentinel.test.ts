// The store and leash contracts against the Redis store reached through Redis Sentinel: one master and
// one sentinel monitoring it, started for this file; the store asks the sentinel where the master is.
import { after, before } from 'node:test';
import { createRedisStore } from '../../src/store/index.js';
import { redisStoreConfig, startRedis, startSentinel, type RedisServer, type TestSentinel } from '../helpers/redis.js';
import { until } from '../helpers/wait.js';
import { approvalContract } from '../helpers/approval-contract.js';
import { leashContract } from '../helpers/leash-contract.js';
import { storeContract, type ContractStore } from '../helpers/store-contract.js';

const MASTER_NAME = 'wgmaster';
let redis: RedisServer | undefined;
let sentinel: TestSentinel | undefined;
let n = 0;

before(async () => {
  redis = await startRedis();
  sentinel = await startSentinel(redis, MASTER_NAME);
  const known = await until(async () => (await sentinel!.masterAddr())?.port === redis!.port, { timeoutMs: 10_000 });
  if (!known) throw new Error(`sentinel does not report ${MASTER_NAME} at port ${redis.port}`);
});

after(async () => {
  // Each stop is SIGTERM, then SIGKILL after 5 s: bounded.
  await sentinel?.stop();
  await redis?.stop();
});

const makeStore = async (): Promise<ContractStore> => {
  // A prefix per test: each starts on an empty store of its own (and initialises its sentinel key).
  const config = redisStoreConfig(redis!.url, {
    keyPrefix: `s${++n}:`,
    initOnEmpty: true,
    sentinel: { name: MASTER_NAME, nodes: [{ host: '127.0.0.1', port: sentinel!.port }] },
  });
  const store = createRedisStore(config);
  if (!(await store.whenReady(5000))) throw new Error(`store not ready: ${store.notReadyReason()?.detail}`);
  return { store, cleanup: () => store.close() };
};

storeContract('redis sentinel', makeStore);
leashContract('redis sentinel', makeStore);
approvalContract('redis sentinel', makeStore);
