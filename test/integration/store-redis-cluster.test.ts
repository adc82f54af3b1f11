// The store and leash contracts against a three-master Redis Cluster (hash tags, scripts, scans per master).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before } from 'node:test';
import { createRedisStore } from '../../src/store/index.js';
import { redisStoreConfig, startCluster, type TestCluster } from '../helpers/redis.js';
import { approvalContract } from '../helpers/approval-contract.js';
import { leashContract } from '../helpers/leash-contract.js';
import { storeContract, type ContractStore } from '../helpers/store-contract.js';

const run = promisify(execFile);
let cluster: TestCluster;
let n = 0;

before(async () => {
  cluster = await startCluster();
});

after(async () => {
  await cluster?.stop();
});

const makeStore = async (): Promise<ContractStore> => {
  const config = redisStoreConfig(cluster.nodes[0]!.url, { keyPrefix: `k${++n}:`, initOnEmpty: true, cluster: cluster.seeds });
  const store = createRedisStore(config);
  if (!(await store.whenReady(5000))) throw new Error(`store not ready: ${store.notReadyReason()?.detail}`);
  // Each test's prefix holds one sentinel per slot (16,384 keys): emptied after each test, so that
  // scans (dead letters) stay as fast as the contract's short leases need.
  const cleanup = async (): Promise<void> => {
    await store.close();
    await Promise.all(cluster.nodes.map((s) => run('redis-cli', ['-p', String(s.port), 'flushall'], { timeout: 5000 })));
  };
  return { store, cleanup };
};

storeContract('redis cluster', makeStore);
leashContract('redis cluster', makeStore);
approvalContract('redis cluster', makeStore);
