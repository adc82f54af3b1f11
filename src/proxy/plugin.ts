// One fastify app per listener: preflight, routing by prefix, streamed reads, buffered writes, problems.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import httpProxy from '@fastify/http-proxy';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Config, IdempotencyConfig, ReconcileConfig, UpstreamConfig } from '../config/schema.js';
import { PROBLEM_CONTENT_TYPE, WriteguardError, toProblem } from '../errors.js';
import type { Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import { Exchange } from '../observe/response-log.js';
import { agentForRead, scopeOf } from '../idempotency/scope.js';
import type { RetryKit } from '../retry/cooldown.js';
import { readBody } from './body.js';
import { upstreamRequestHeaders, agentResponseHeaders, valuesOf, type HeaderMap } from './headers.js';
import { preflight } from './preflight.js';
import { forwardRead, onPassthroughError, onPassthroughResponse } from './read.js';
import { hasDotSegment, isAllowed, routePolicy, stripPrefix, upstreamPath, type Listener } from './route.js';

declare module 'fastify' {
  interface FastifyRequest {
    exchange: Exchange;
  }
}

/** One request on its way to one upstream: what both the read and the write paths are handed. */
export interface ForwardContext {
  request: FastifyRequest;
  reply: FastifyReply;
  exchange: Exchange;
  upstream: UpstreamConfig;
  dispatcher: Dispatcher;
  origin: string;
  /** Path and query as the upstream receives them. */
  path: string;
  /** The agent's headers as they go upstream (hygiene applied, Host rewritten). */
  headers: HeaderMap;
}

/** Everything a write handler needs; the body is already buffered and bounded. */
export interface WriteContext extends ForwardContext {
  /** Path and query as the API documents them (prefix stripped), for route rules. */
  apiPath: string;
  body: Buffer;
  /** The upstream's idempotency settings with the matching route's overrides. */
  idempotency: IdempotencyConfig;
  /** The route's status-check request for unknown outcomes, if it has one. */
  reconcile: ReconcileConfig | null;
}

export type WriteHandler = (ctx: WriteContext) => Promise<void>;

export interface ProxyDeps {
  config: Config;
  log: Logger;
  dispatchers: ReadonlyMap<string, Dispatcher>;
  lifecycle: { draining: boolean };
  handleWrite: WriteHandler;
  kit: RetryKit;
  metrics: Metrics;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function sendProblem(request: FastifyRequest, reply: FastifyReply, err: WriteguardError): FastifyReply {
  const exchange = request.exchange;
  exchange.ownCode = err.code;
  if (exchange.outcome === 'forwarded') exchange.outcome = err.code === 'outcome_unknown' ? 'unknown' : 'rejected';
  exchange.status = err.status;
  if (reply.raw.destroyed) return reply;
  // SDKs retry on their own unless told not to; only these two are worth an SDK retry.
  const sdkRetry = err.code === 'idempotency_key_in_use' || err.code === 'store_unavailable';
  return reply
    .code(err.status)
    .header('x-should-retry', String(sdkRetry))
    .header('stripe-should-retry', String(sdkRetry))
    .headers(err.headers)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .header('x-request-id', exchange.id)
    .send(JSON.stringify(toProblem(err, exchange.id)));
}

/** fastify's own 4xx errors (bad URL, bad content type…) keep their meaning; anything else is a bug. */
function asWriteguardError(err: Error & { statusCode?: number; code?: string }, log: Logger): WriteguardError {
  if (err instanceof WriteguardError) return err;
  if (err.statusCode === 413) return new WriteguardError('body_too_large', err.message);
  if (err.statusCode === 431) return new WriteguardError('headers_too_large', err.message);
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return new WriteguardError('bad_request', err.message);
  if (err.code === 'ECONNRESET' || err.message === 'aborted') return new WriteguardError('bad_request', 'the client aborted the request');
  log.error({ err: { message: err.message, code: err.code, stack: err.stack } }, 'internal error');
  return new WriteguardError('internal_error', 'writeguard failed to handle this request');
}

function createHttpServer(config: Config) {
  const { limits } = config;
  return (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    const server = createServer({
      maxHeaderSize: limits.maxHeaderBytes, requestTimeout: limits.requestTimeoutMs, headersTimeout: limits.headersTimeoutMs, keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks those timeouts only this often (30 s by default): a 1-byte/s client would outlive them.
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    }, handler);
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
    const error = err.code === 'HPE_HEADER_OVERFLOW'
      ? new WriteguardError('headers_too_large', 'the request headers are too large')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new WriteguardError('bad_request', 'the request was not received in time (limits.headersTimeoutMs / requestTimeoutMs)', { status: 408 })
        : new WriteguardError('bad_request', `the request could not be parsed (${err.code ?? 'error'})`);
    const id = randomUUID();
    const body = JSON.stringify(toProblem(error, id));
    socket.end(
      `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Request-Id: ${id}\r\n\r\n${body}`,
    );
    log.info({ request_id: id, code: error.code, status: error.status, method: null, upstream: null, path: null, outcome: 'rejected', attempts: 0 }, 'response');
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
  });
  app.decorateRequest('exchange', null as unknown as Exchange);
  // Bodies stay raw streams (http-proxy's catch-all parser); fastify's text parser would turn them into strings.
  app.removeContentTypeParser('text/plain');

  // Callback-style hooks: an async hook costs a promise per request on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    const exchange = new Exchange(request.id, request.method, request.raw.url ?? '', reply.raw, log, deps.metrics);
    request.exchange = exchange;
    const sdkRetry = Number(request.headers['x-stainless-retry-count']);
    if (sdkRetry >= 1) exchange.sdkRetryCount = sdkRetry;
    if (lifecycle.draining) return done(new WriteguardError('draining', 'writeguard is shutting down; retry on another instance', { headers: { connection: 'close' } }));
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
  app.setErrorHandler((err, request, reply) => sendProblem(request, reply, asWriteguardError(err as Error, log)));
  app.setNotFoundHandler((request) => {
    throw new WriteguardError('no_route', `no upstream is configured for ${request.exchange.path}`);
  });

  for (const { prefix, upstream } of listener.routes) registerUpstream(app, prefix, upstream, deps);
  return app;
}

/** GET and HEAD: writeguard's own route (no body, no reply-from); every other method goes through http-proxy. */
const READ_ROUTE_METHODS = ['GET', 'HEAD'];
const PROXIED_METHODS = ['DELETE', 'OPTIONS', 'PATCH', 'POST', 'PUT'];

function registerUpstream(app: FastifyInstance, prefix: string, upstream: UpstreamConfig, deps: ProxyDeps): void {
  const target = new URL(upstream.target);
  const dispatcher = deps.dispatchers.get(upstream.name)!;

  /** Routes one request; `options` is http-proxy's, for a passthrough write (absent on the read route). */
  const handle = async (request: FastifyRequest, reply: FastifyReply, options?: unknown): Promise<FastifyReply> => {
    request.exchange.upstream = upstream.name;
    const raw = request.raw.url!;
    if (!raw.startsWith(prefix) || hasDotSegment(raw)) throw new WriteguardError('bad_request', 'the request path is not a plain path under this route');
    const apiPath = stripPrefix(raw, prefix);
    if (!isAllowed(upstream.allow, request.method, apiPath)) {
      throw new WriteguardError('route_not_allowed', `${request.method} ${request.exchange.path} is not in this upstream's allow-list`);
    }
    const path = upstreamPath(target.pathname, apiPath);
    const policy = routePolicy(upstream, request.method, apiPath);
    // Reads, and POSTs that read (a quote, a completion: `passthrough`), stream: no key, no record.
    if (policy.mode === 'passthrough' || !(policy.idempotency.methods as readonly string[]).includes(request.method)) {
      if (SAFE_METHODS.has(request.method)) {
        const agent = agentForRead(deps.config.identity, deps.config.identity.agentIdHeader === null ? undefined : valuesOf(request.raw.rawHeaders, deps.config.identity.agentIdHeader));
        return forwardRead({
          request, reply, exchange: request.exchange, upstream, dispatcher, origin: target.origin, path,
          headers: upstreamRequestHeaders(request.headers, target.host), scope: scopeOf(deps.config.namespace, agent), kit: deps.kit, log: deps.log, metrics: deps.metrics,
        });
      }
      // Not safe to repeat: streamed once.
      request.exchange.attempts = 1;
      return reply.from(path, options as never);
    }
    const body = await readBody(request.body as Readable | undefined, request.headers['content-length'], policy.idempotency.maxBodyBytes);
    // The line waits for the write's own end: the agent may leave while the upstream still works.
    request.exchange.hold();
    try {
      await deps.handleWrite({
        request, reply, exchange: request.exchange, upstream, dispatcher, origin: target.origin, path, apiPath,
        headers: upstreamRequestHeaders(request.headers, target.host), body, idempotency: policy.idempotency, reconcile: policy.reconcile,
      });
    } catch (err) {
      sendProblem(request, reply, asWriteguardError(err as Error, deps.log));
    } finally {
      request.exchange.release();
    }
    return reply;
  };

  // fastify's root prefix is ''; with '/' the slash between target path and rest would be dropped.
  const routePrefix = prefix === '/' ? '' : prefix;
  app.register(async (reads) => {
    for (const url of ['/', '/*']) reads.route({ method: READ_ROUTE_METHODS, url, handler: (request, reply) => handle(request, reply) });
  }, { prefix: routePrefix });
  app.register(httpProxy, {
    upstream: upstream.target,
    prefix: routePrefix,
    httpMethods: PROXIED_METHODS,
    undici: dispatcher as never,
    retryMethods: [],
    disableRequestLogging: true,
    // Redirects go back as the upstream sent them, on every path (writes never rewrite them either).
    internalRewriteLocationHeader: false,
    replyOptions: {
      timeout: upstream.timeoutMs,
      rewriteRequestHeaders: (_req: unknown, headers: HeaderMap) => upstreamRequestHeaders(headers, target.host) as Record<string, string>,
      rewriteHeaders: (headers: HeaderMap) => agentResponseHeaders(headers as HeaderMap) as Record<string, string>,
      onResponse: onPassthroughResponse(upstream) as never,
      onError: onPassthroughError as never,
    },
    handler: (request: FastifyRequest, reply: FastifyReply, _dest: string, options: unknown) => handle(request, reply, options),
  } as never);
}
