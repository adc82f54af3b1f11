// The store named by the config: memory for one process, Redis for a fleet.
import type { Config } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { MemoryStore } from './memory.js';
import { createRedisStore } from './redis.js';
import type { Store } from './store.js';

export function createStore(config: Config['store'], log: Logger): Store {
  if (config.kind === 'redis') return createRedisStore(config, log);
  log.warn('memory store: idempotency records live in this process only and are lost on restart; use store.kind redis (REDIS_URL) in production');
  return new MemoryStore(Date.now, config.memory);
}
