// One fastify app per listener: preflight, routing by prefix, and the three kinds of route — reads,
// protected writes, passthrough writes — chosen by the `routeKind` constraint. Wiring only.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import type { Config, UpstreamConfig } from '../config/schema.js';
import { WriteguardError } from '../errors.js';
import { upstreamRequestHeaders, valuesOf } from '../http/headers.js';
import { agentForRead, scopeOf } from '../idempotency/scope.js';
import { Exchange } from '../observe/exchange.js';
import type { Logger } from '../observe/logger.js';
import type { AttemptTarget } from '../retry/instrumented.js';
import type { ProxyDeps } from './context.js';
import { registerPassthrough, WRITE_METHODS } from './passthrough.js';
import { preflight } from './preflight.js';
import { forwardRead } from './read.js';
import { renderClientError, renderProblem } from './render.js';
import { isProtected, locate, routePolicy, stripPrefix, upstreamOf, type Listener } from './route.js';
import { handleProtectedWrite } from './write-route.js';

/** fastify's own 4xx errors (bad URL, bad content type…) keep their meaning; anything else is a bug. */
function asWriteguardError(err: Error & { statusCode?: number; code?: string }, log: Logger): WriteguardError {
  if (err instanceof WriteguardError) return err;
  if (err.statusCode === 413) return new WriteguardError('body_too_large', err.message);
  if (err.statusCode === 431) return new WriteguardError('headers_too_large', err.message);
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return new WriteguardError('bad_request', err.message);
  if (err.code === 'ECONNRESET' || err.message === 'aborted') return new WriteguardError('bad_request', 'the client aborted the request');
  // A streamed answer that stalled before its first byte reached the agent.
  if (err.code === 'UND_ERR_BODY_TIMEOUT') return new WriteguardError('upstream_timeout', 'the upstream stopped sending its answer');
  log.error({ err: { message: err.message, code: err.code, stack: err.stack } }, 'internal error');
  return new WriteguardError('internal_error', 'writeguard failed to handle this request');
}

function createHttpServer(config: Config) {
  const { limits } = config;
  return (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    const server = createServer(
      {
        maxHeaderSize: limits.maxHeaderBytes,
        requestTimeout: limits.requestTimeoutMs,
        headersTimeout: limits.headersTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // Node checks those timeouts only this often (30 s by default): a 1-byte/s client would outlive them.
        connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
      },
      handler,
    );
    // One more than allowed, so an over-long header block is seen (and refused) rather than truncated.
    server.maxHeadersCount = limits.maxHeaderCount + 1;
    server.maxConnections = limits.maxConnections;
    return server;
  };
}

/** Parse errors never reach a route: answer them as problems too, and log their line. */
function clientErrorHandler(log: Logger) {
  return (err: Error & { code?: string }, socket: Socket): void => {
    if (!socket.writable) return void socket.destroy();
    const error =
      err.code === 'HPE_HEADER_OVERFLOW'
        ? new WriteguardError('headers_too_large', 'the request headers are too large')
        : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? new WriteguardError('bad_request', 'the request was not received in time (limits.headersTimeoutMs / requestTimeoutMs)', {
              status: 408,
            })
          : new WriteguardError('bad_request', `the request could not be parsed (${err.code ?? 'error'})`);
    renderClientError(socket, error, log);
  };
}

type Strategy = NonNullable<NonNullable<FastifyServerOptions['routerOptions']>['constraints']>[string];
type Routed = Parameters<ReturnType<Strategy['storage']>['set']>[1];

/**
 * Sends reads to the read route, and each write to the write route or to http-proxy by the policy
 * of the route it targets: derived before fastify picks a handler, so both can own the same paths.
 */
function routeKind(listener: Listener): Strategy {
  return {
    name: 'routeKind',
    storage() {
      const handlers = new Map<unknown, Routed>();
      return { get: (value) => handlers.get(value) ?? null, set: (value, handler) => void handlers.set(value, handler) };
    },
    deriveConstraint(req: IncomingMessage) {
      if (!WRITE_METHODS.includes(req.method ?? '')) return 'read';
      const rawUrl = req.url ?? '/';
      const route = upstreamOf(listener, rawUrl);
      if (route === undefined) return 'passthrough';
      return isProtected(routePolicy(route.upstream, req.method ?? 'GET', stripPrefix(rawUrl, route.prefix)), req.method ?? 'GET')
        ? 'protect'
        : 'passthrough';
    },
    mustMatchWhenDerived: true,
    validate(value: unknown) {
      if (value !== 'read' && value !== 'protect' && value !== 'passthrough') throw new Error('routeKind is read, protect or passthrough');
    },
  };
}

export function buildProxyApp(listener: Listener, deps: ProxyDeps): FastifyInstance {
  const { config, log, lifecycle } = deps;
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
    // No per-request child logger: writeguard's own lines carry request_id, and a child costs a
    // pino bindings serialisation on every request.
    childLoggerFactory: (logger) => logger,
    requestIdHeader: false,
    serverFactory: createHttpServer(config),
    forceCloseConnections: 'idle',
    clientErrorHandler: clientErrorHandler(log),
    routerOptions: { constraints: { routeKind: routeKind(listener) } },
  });
  app.decorateRequest('exchange', null as unknown as Exchange);
  // Bodies stay raw streams (http-proxy's catch-all parser); fastify's text parser would turn them into strings.
  app.removeContentTypeParser('text/plain');

  // Callback-style hooks: an async hook costs a promise per request on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    const exchange = new Exchange(request.id, request.method, request.raw.url ?? '', reply.raw, log, deps.metrics);
    request.exchange = exchange;
    if (deps.tracing !== null) exchange.trace = deps.tracing.request(request.method, exchange.path, request.headers);
    const sdkRetry = Number(request.headers['x-stainless-retry-count']);
    if (sdkRetry >= 1) exchange.sdkRetryCount = sdkRetry;
    if (lifecycle.draining)
      return done(
        new WriteguardError('draining', 'writeguard is shutting down; retry on another instance', { headers: { connection: 'close' } }),
      );
    const refused = preflight(request.raw, config.limits);
    done(refused ?? undefined);
  });
  // Every answer says how many upstream attempts it took; after a retry, SDKs must not add their own.
  app.addHook('onSend', (request, reply, payload, done) => {
    const attempts = request.exchange.attempts;
    reply.header('x-writeguard-attempts', String(attempts));
    if (attempts > 1) reply.header('x-should-retry', 'false').header('stripe-should-retry', 'false');
    request.exchange.answering();
    done(null, payload);
  });
  app.setErrorHandler((err, request, reply) => renderProblem(request, reply, asWriteguardError(err as Error, log)));
  app.setNotFoundHandler((request) => {
    throw new WriteguardError('no_route', `no upstream is configured for ${request.exchange.path}`);
  });

  for (const { prefix, upstream } of listener.routes) registerUpstream(app, prefix, upstream, deps);
  return app;
}

/** Safe methods: writeguard's read route (a method the policy protects is handled as a write). */
const READ_METHODS = ['GET', 'HEAD', 'OPTIONS'];

function registerUpstream(app: FastifyInstance, prefix: string, upstream: UpstreamConfig, deps: ProxyDeps): void {
  const target = new URL(upstream.target);
  const dispatcher = deps.dispatchers.get(upstream.name)!;
  const { identity } = deps.config;
  const attemptTarget = (request: FastifyRequest): AttemptTarget => {
    const agent = agentForRead(
      identity,
      identity.agentIdHeader === null ? undefined : valuesOf(request.raw.rawHeaders, identity.agentIdHeader),
    );
    const scope = scopeOf(deps.config.namespace, agent);
    return { upstream, dispatcher, scope, kit: deps.kit, metrics: deps.metrics, log: deps.log, trace: request.exchange.trace };
  };
  const writeTarget = { upstream, dispatcher, target, handleWrite: deps.handleWrite, attemptTarget };

  const read = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    request.exchange.upstream = upstream.name;
    const located = locate(request.method, request.raw.url!, prefix, upstream, target.pathname);
    if (isProtected(located.policy, request.method)) return handleProtectedWrite(request, reply, located, writeTarget);
    const context = {
      request,
      reply,
      exchange: request.exchange,
      upstream,
      dispatcher,
      origin: target.origin,
      path: located.path,
      headers: upstreamRequestHeaders(request.headers, target.host),
    };
    return forwardRead(context, attemptTarget(request));
  };
  const write = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    request.exchange.upstream = upstream.name;
    return handleProtectedWrite(request, reply, locate(request.method, request.raw.url!, prefix, upstream, target.pathname), writeTarget);
  };

  // fastify's root prefix is ''; with '/' the slash between target path and rest would be dropped.
  const routePrefix = prefix === '/' ? '' : prefix;
  app.register(
    async (scope) => {
      // Bodies stay raw streams: a write's exact bytes are buffered, bounded, by readBody.
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
      for (const url of ['/', '/*']) {
        scope.route({ method: READ_METHODS, url, constraints: { routeKind: 'read' }, handler: read });
        scope.route({ method: WRITE_METHODS, url, constraints: { routeKind: 'protect' }, handler: write });
      }
    },
    { prefix: routePrefix },
  );
  registerPassthrough(app, routePrefix, prefix, upstream, dispatcher);
}
