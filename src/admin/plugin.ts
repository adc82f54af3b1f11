// The admin listener, on a port of its own (loopback by default): health, readiness, dead letters, budgets.
// The agent shares the loopback: nothing here changes state without the admin token.
// Its errors are the proxy's: codes from the one table, answered as problem+json by one handler.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { formatIssues } from '../config/issues.js';
import { AGENT_ID, type Config } from '../config/schema.js';
import { PROBLEM_CONTENT_TYPE, WriteguardError, toProblem } from '../errors.js';
import { scopeOf } from '../idempotency/scope.js';
import type { Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import { StoreUnavailableError, type NotReady, type Store } from '../store/store.js';
import { listDeadLetters, parseDeadLetterId, resolutionSchema, resolveDeadLetter } from './dead-letters.js';
import { decideApproval, listApprovals } from './approvals.js';
import { budgetReport } from './budgets.js';
import { keyRecords } from './keys.js';

export interface AdminDeps {
  config: Config;
  log: Logger;
  lifecycle: { draining: boolean };
  store: Store;
  metrics: Metrics;
}

const MAX_LIST = 1000;

/** Loopback by name or address: 127.0.0.0/8, ::1, an IPv4-mapped 127.x, or localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Why writes are refused, as an operator acts on it: wait for the store (or fix the network), init an empty
 * one, ack one that lost its data, or stop it evicting. The store's own code stays beside it.
 */
function refusalOf(code: NotReady['code'] | undefined): string {
  switch (code) {
    case 'not_initialised':
      return 'store_not_initialised';
    case 'sentinel_missing':
    case 'sentinel_changed':
      return 'store_lost_data';
    case 'evicting':
      return 'store_evicting';
    default:
      return 'store_unreachable';
  }
}

/** Reachable from outside the host (or pod) with no token: only what probes and scrapers need. */
function exposedWithoutToken(config: Config): boolean {
  return config.admin.token === null && !isLoopback(config.admin.host);
}

function bearerMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** What a route threw, as a code of the table: fastify's own 4xx keep their meaning, anything unexpected is a bug. */
function asWriteguardError(err: Error & { statusCode?: number }, log: Logger): WriteguardError {
  if (err instanceof WriteguardError) return err;
  if (err instanceof StoreUnavailableError) return new WriteguardError('store_unavailable', err.message, { cause: err });
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return new WriteguardError('bad_request', err.message);
  log.error({ err: { message: err.message } }, 'admin route failed');
  return new WriteguardError('internal_error', 'the admin route failed');
}

function sendProblem(request: FastifyRequest, reply: FastifyReply, err: WriteguardError): FastifyReply {
  return reply
    .code(err.status)
    .headers(err.headers)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .header('x-request-id', request.id)
    .send(JSON.stringify(toProblem(err, request.id)));
}

export function buildAdminApp(deps: AdminDeps): FastifyInstance {
  const { store, config } = deps;
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
    // Dead letter ids (scope, upstream, key hash) run past find-my-way's default 100-character parameter.
    routerOptions: { maxParamLength: 512 },
  });

  app.setErrorHandler((err, request, reply) => sendProblem(request, reply, asWriteguardError(err as Error, deps.log)));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, new WriteguardError('not_found', `no admin route ${request.method} ${request.url.split('?')[0]}`)),
  );
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    if (deps.lifecycle.draining) return reply.code(503).send({ ready: false, reason: 'draining' });
    if (!store.ready()) {
      const why = store.notReadyReason();
      return reply.code(503).send({
        ready: false,
        reason: refusalOf(why?.code),
        store: why?.code ?? 'unknown',
        detail: why?.detail ?? 'the store is not ready',
      });
    }
    return { ready: true };
  });

  const token = config.admin.token;
  // With a token, everything but health, readiness and metrics needs it: the agent shares the loopback.
  const OPEN = new Set(['/healthz', '/readyz', '/metrics']);
  if (token !== null) {
    app.addHook('onRequest', async (request) => {
      if (!OPEN.has(request.url.split('?')[0]!) && !bearerMatches(request.headers.authorization, token)) {
        throw new WriteguardError('unauthorized', 'a valid admin bearer token is required');
      }
    });
  }

  app.get('/metrics', async (_request, reply) => {
    const { registry } = deps.metrics;
    return reply.type(registry.contentType).send(await registry.metrics());
  });
  if (exposedWithoutToken(config)) {
    deps.log.warn(
      { admin: config.admin.host },
      'admin listener off loopback without admin.token: it serves only /healthz, /readyz and /metrics',
    );
    return app;
  }
  readRoutes(app, deps);
  // State changes exist only with a token.
  if (token !== null) stateRoutes(app, deps);
  return app;
}

/** Operator reads: dead letters, approvals, budgets, key records. */
function readRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { store, config } = deps;
  app.get('/dead-letters', async (request: FastifyRequest<{ Querystring: { limit?: string } }>) => {
    const limit = Math.min(MAX_LIST, Math.max(1, Number(request.query.limit ?? 100) || 100));
    return { dead_letters: await listDeadLetters(store, limit) };
  });

  app.get('/approvals', async (request: FastifyRequest<{ Querystring: { limit?: string } }>) => {
    const limit = Math.min(MAX_LIST, Math.max(1, Number(request.query.limit ?? 100) || 100));
    return { approvals: await listApprovals(store, config.namespace, limit) };
  });

  app.get('/budgets', async (request: FastifyRequest<{ Querystring: { agent?: string } }>) => {
    const { agent } = request.query;
    if (agent !== undefined && !AGENT_ID.test(agent))
      throw new WriteguardError('invalid_agent', 'agent must be 1-128 of A-Z, a-z, 0-9, . _ : @ -');
    return { budgets: await budgetReport(store, config, agent ?? null, Date.now()) };
  });

  app.get(
    '/keys/:key',
    async (request: FastifyRequest<{ Params: { key: string }; Querystring: { agent?: string; upstream?: string } }>) => {
      // With an agent, that agent's record; without, every agent's (an operator's view, scanned).
      const { agent, upstream } = request.query;
      if (agent !== undefined && !AGENT_ID.test(agent))
        throw new WriteguardError('invalid_agent', 'agent must be 1-128 of A-Z, a-z, 0-9, . _ : @ -');
      const records = await keyRecords(store, request.params.key, {
        ...(agent === undefined ? {} : { scope: scopeOf(config.namespace, agent) }),
        upstreams: upstream !== undefined ? [upstream] : config.upstreams.map((u) => u.name),
      });
      if (records.length === 0) throw new WriteguardError('not_found', 'no record for this key (agent and upstream as given)');
      return { records };
    },
  );
}

/** Decisions an operator makes: approvals, resuming an agent, resolving dead letters. */
function stateRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const { store, config } = deps;
  for (const verdict of ['approve', 'deny'] as const) {
    app.post(`/approvals/:id/${verdict}`, async (request: FastifyRequest<{ Params: { id: string } }>) => {
      const result = await decideApproval(store, request.params.id, verdict);
      if (result === 'not_found') throw new WriteguardError('not_found', 'no such approval');
      if (result === 'stale')
        throw new WriteguardError('stale', 'the approval is no longer pending (it was decided, or it expired): list again');
      deps.log.info({ approval: request.params.id, verdict }, 'approval decided');
      return { decided: true, state: verdict === 'approve' ? 'approved' : 'denied' };
    });
  }
  app.post('/agents/:id/resume', async (request: FastifyRequest<{ Params: { id: string } }>) => {
    const agent = request.params.id;
    if (!AGENT_ID.test(agent)) throw new WriteguardError('invalid_agent', 'agent must be 1-128 of A-Z, a-z, 0-9, . _ : @ -');
    const upstreams = config.upstreams.filter((u) => u.breaker !== null).map((u) => u.name);
    const wasPaused = await store.resume(scopeOf(config.namespace, agent), upstreams);
    deps.log.info({ agent, was_paused: wasPaused }, 'agent resumed');
    return { resumed: true, was_paused: wasPaused };
  });
  app.post('/dead-letters/:id/resolve', async (request: FastifyRequest<{ Params: { id: string } }>) => {
    const key = parseDeadLetterId(request.params.id);
    if (key === null) throw new WriteguardError('not_found', 'no such dead letter');
    const parsed = resolutionSchema.safeParse(request.body);
    if (!parsed.success) throw new WriteguardError('invalid_resolution', formatIssues(parsed.error.issues, { root: '(body)' }).join('; '));
    const { result } = await resolveDeadLetter(store, config.upstreams, key, parsed.data);
    if (result === 'not_found') throw new WriteguardError('not_found', 'no such dead letter');
    if (result === 'stale')
      throw new WriteguardError('stale', 'the record is not an unresolved dead letter at that epoch (it changed, or was settled)');
    deps.log.info({ upstream: key.upstream, outcome: parsed.data.outcome }, 'dead letter resolved');
    return { resolved: true, outcome: parsed.data.outcome };
  });
}
