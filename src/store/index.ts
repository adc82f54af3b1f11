// The store's one door: the store named by the config (memory for one process, Redis for a
// fleet), and the operator commands on a Redis store. The interface and record types are in
// store.ts; nothing outside store/ reaches into memory.ts or redis/.
import type { Config } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { MemoryStore } from './memory.js';
import { createRedisStore } from './redis/steps.js';
import type { Store } from './store.js';

export { MemoryStore, createRedisStore };
export type { StoreConfig } from './redis/client.js';
export { ackStore, initStore } from './redis/operator.js';
export type { RedisStore, RedisStoreOptions } from './redis/steps.js';

export function createStore(config: Config['store'], log: Logger): Store {
  if (config.kind === 'redis') return createRedisStore(config, log);
  log.warn(
    'memory store: idempotency records, intents and budget spend live in this process only and are lost on restart ' +
      '(a budget then starts again from zero, and each process of a fleet has its own); use store.kind redis (REDIS_URL) in production',
  );
  return new MemoryStore(Date.now, config.memory);
}
