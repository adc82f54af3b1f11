// The admin listener, on a port of its own (loopback by default): health, readiness, dead letters.
// The agent shares the loopback: nothing here changes state without the admin token.
import { timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { AGENT_ID, type Config } from '../config/schema.js';
import { scopeOf } from '../idempotency/scope.js';
import type { Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import { StoreUnavailableError, type Store } from '../store/store.js';
import { listDeadLetters, parseDeadLetterId, resolutionSchema, resolveDeadLetter } from './dead-letters.js';
import { keyRecords } from './keys.js';

export interface AdminDeps {
  config: Config;
  log: Logger;
  lifecycle: { draining: boolean };
  store: Store;
  metrics: Metrics;
}

const MAX_LIST = 1000;

function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function buildAdminApp(deps: AdminDeps): FastifyInstance {
  const { store, config } = deps;
  // Dead letter ids (scope, upstream, key hash) run past find-my-way's default 100-character parameter.
  const app = Fastify({ loggerInstance: deps.log as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), routerOptions: { maxParamLength: 512 } });
  const fail = (reply: FastifyReply, status: number, code: string, message: string) => reply.code(status).send({ error: { code, message } });

  app.setErrorHandler((err, _request, reply) => {
    if (err instanceof StoreUnavailableError) return fail(reply, 503, 'store_unavailable', err.message);
    deps.log.error({ err: { message: (err as Error).message } }, 'admin route failed');
    return fail(reply, 500, 'internal_error', 'the admin route failed');
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (deps.lifecycle.draining) return reply.code(503).send({ ready: false, reason: 'draining' });
    if (!store.ready()) {
      const why = store.notReadyReason();
      return reply.code(503).send({ ready: false, reason: 'store_unavailable', store: why?.code ?? 'unknown', detail: why?.detail ?? 'the store is not ready' });
    }
    return { ready: true };
  });

  const token = config.admin.token;
  // With a token, everything but health, readiness and metrics needs it: the agent shares the loopback.
  const OPEN = new Set(['/healthz', '/readyz', '/metrics']);
  if (token !== null) {
    app.addHook('onRequest', async (request, reply) => {
      if (!OPEN.has(request.url.split('?')[0]!) && !bearerMatches(request.headers.authorization, token)) {
        return fail(reply, 401, 'unauthorized', 'a valid admin bearer token is required');
      }
    });
  }

  app.get('/metrics', async (_request, reply) => {
    const { registry } = deps.metrics;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
  app.get('/dead-letters', async (request: FastifyRequest<{ Querystring: { limit?: string } }>) => {
    const limit = Math.min(MAX_LIST, Math.max(1, Number(request.query.limit ?? 100) || 100));
    return { dead_letters: await listDeadLetters(store, limit) };
  });

  app.get('/keys/:key', async (request: FastifyRequest<{ Params: { key: string }; Querystring: { agent?: string; upstream?: string } }>, reply) => {
    // With an agent, that agent's record; without, every agent's (an operator's view, scanned).
    const { agent, upstream } = request.query;
    if (agent !== undefined && !AGENT_ID.test(agent)) return fail(reply, 400, 'invalid_agent', 'agent must be 1-128 of A-Z, a-z, 0-9, . _ : @ -');
    const records = await keyRecords(store, request.params.key, {
      ...(agent === undefined ? {} : { scope: scopeOf(config.namespace, agent) }),
      upstreams: upstream !== undefined ? [upstream] : config.upstreams.map((u) => u.name),
    });
    return records.length === 0 ? fail(reply, 404, 'not_found', 'no record for this key (agent and upstream as given)') : { records };
  });

  // State changes exist only with a token.
  if (token !== null) {
    app.post('/dead-letters/:id/resolve', async (request: FastifyRequest<{ Params: { id: string } }>, reply) => {
      const key = parseDeadLetterId(request.params.id);
      if (key === null) return fail(reply, 404, 'not_found', 'no such dead letter');
      const parsed = resolutionSchema.safeParse(request.body);
      if (!parsed.success) return fail(reply, 400, 'invalid_resolution', parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '));
      const { result } = await resolveDeadLetter(store, config.upstreams, key, parsed.data);
      if (result === 'not_found') return fail(reply, 404, 'not_found', 'no such dead letter');
      if (result === 'stale') return fail(reply, 409, 'stale', 'the record is not an unresolved dead letter at that epoch (it changed, or was settled)');
      deps.log.info({ upstream: key.upstream, outcome: parsed.data.outcome }, 'dead letter resolved');
      return { resolved: true, outcome: parsed.data.outcome };
    });
  }
  return app;
}
