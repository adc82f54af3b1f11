// The store and leash contracts against the Redis store, on a real redis-server started for this file.
import { after, before } from 'node:test';
import { createRedisStore } from '../../src/store/index.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';
import { approvalContract } from '../helpers/approval-contract.js';
import { leashContract } from '../helpers/leash-contract.js';
import { storeContract, type ContractStore } from '../helpers/store-contract.js';

let redis: RedisServer | undefined;
let n = 0;

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await redis?.stop();
});

const makeStore = async (): Promise<ContractStore> => {
  // A prefix per test: each starts on an empty store of its own (and initialises its sentinel).
  const store = createRedisStore(redisStoreConfig(redis!.url, { keyPrefix: `c${++n}:`, initOnEmpty: true }));
  if (!(await store.whenReady(5000))) throw new Error(`store not ready: ${store.notReadyReason()?.detail}`);
  return { store, cleanup: () => store.close() };
};

storeContract('redis', makeStore);
leashContract('redis', makeStore);
approvalContract('redis', makeStore);
