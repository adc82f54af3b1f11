// The admin listener: liveness and readiness, on a port of its own (loopback by default).
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../observe/logger.js';
import type { Store } from '../store/store.js';

export interface AdminDeps {
  log: Logger;
  lifecycle: { draining: boolean };
  store: Store;
}

export function buildAdminApp(deps: AdminDeps): FastifyInstance {
  const app = Fastify({ loggerInstance: deps.log as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }) });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (deps.lifecycle.draining) return reply.code(503).send({ ready: false, reason: 'draining' });
    if (!deps.store.ready()) return reply.code(503).send({ ready: false, reason: 'store_unavailable' });
    return { ready: true };
  });
  return app;
}
