// The store contract against a three-master Redis Cluster (hash tags, scripts, scans per master).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRedisStore } from '../../src/store/redis.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';
import { storeContract } from '../helpers/store-contract.js';

const run = promisify(execFile);
const nodes: RedisServer[] = [];
let n = 0;

before(async () => {
  for (let i = 0; i < 3; i++) {
    nodes.push(await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }));
  }
  await run('redis-cli', ['--cluster', 'create', ...nodes.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 10_000 });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const states = await Promise.all(nodes.map((s) => run('redis-cli', ['-p', String(s.port), 'cluster', 'info'], { timeout: 2000 }).then((r) => r.stdout)));
    if (states.every((info) => info.includes('cluster_state:ok'))) return;
    await sleep(100);
  }
  throw new Error('cluster did not become ok');
});

after(async () => {
  for (const s of nodes) await s.stop();
});

storeContract('redis cluster', async () => {
  const config = redisStoreConfig(nodes[0]!.url, { keyPrefix: `k${++n}:`, initOnEmpty: true, cluster: nodes.map((s) => ({ host: '127.0.0.1', port: s.port })) });
  const store = createRedisStore(config);
  if (!(await store.whenReady(5000))) throw new Error(`store not ready: ${store.notReadyReason()?.detail}`);
  // Each test's prefix holds one sentinel per slot (16,384 keys): emptied after each test, so that
  // scans (dead letters) stay as fast as the contract's short leases need.
  const cleanup = async (): Promise<void> => {
    await store.close();
    await Promise.all(nodes.map((s) => run('redis-cli', ['-p', String(s.port), 'flushall'], { timeout: 5000 })));
  };
  return { store, cleanup };
});
