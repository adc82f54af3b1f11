// Writes that are not protected (a `passthrough` route, a method the policy does not protect) stream
// through @fastify/http-proxy, once, never retried. Its routes share the write methods' paths with
// the write route; the `routeKind` constraint (plugin.ts) sends each request to one of them.
import httpProxy from '@fastify/http-proxy';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.js';
import { type WriteguardError } from '../errors.js';
import { attemptFailureError, classifyFailure } from '../http/attempt.js';
import { agentResponseHeaders, upstreamRequestHeaders, type HeaderMap } from '../http/headers.js';
import { renderProblem, renderUpstream } from './render.js';
import { locate } from './route.js';

export const WRITE_METHODS = ['DELETE', 'PATCH', 'POST', 'PUT'];

interface UpstreamResponse {
  statusCode: number;
  headers: HeaderMap;
  stream: NodeJS.ReadableStream;
}

export function registerPassthrough(
  app: FastifyInstance,
  routePrefix: string,
  prefix: string,
  upstream: UpstreamConfig,
  dispatcher: Dispatcher,
): void {
  const target = new URL(upstream.target);
  app.register(httpProxy, {
    upstream: upstream.target,
    prefix: routePrefix,
    httpMethods: WRITE_METHODS,
    constraints: { routeKind: 'passthrough' },
    undici: dispatcher,
    retryMethods: [],
    disableRequestLogging: true,
    // Redirects go back as the upstream sent them, on every path (writes never rewrite them either).
    internalRewriteLocationHeader: false,
    replyOptions: {
      timeout: upstream.timeoutMs,
      rewriteRequestHeaders: (request, headers) => {
        const out = upstreamRequestHeaders(headers as HeaderMap, target.host);
        // Sent once, outside the attempt path: with tracing on, the request's span is the upstream's parent.
        const { trace } = request.exchange;
        return (trace === null ? out : trace.propagate(out)) as Record<string, string>;
      },
      rewriteHeaders: (headers) => agentResponseHeaders(headers as HeaderMap) as Record<string, string>,
      // reply-from's types describe an HTTP/2-capable reply and a server response; it hands over the
      // HTTP/1 reply of this app and the upstream's response.
      onResponse: (request, reply, res) => {
        const answer = res as unknown as UpstreamResponse;
        // An answer read to be inspected can fail before anything was sent (the upstream cut it):
        // a problem, not an unhandled rejection, which would stop the whole process.
        renderUpstream(reply as FastifyReply, request.exchange, upstream, answer.statusCode, answer.headers, answer.stream).catch(
          (err: Error) => renderProblem(request as FastifyRequest, reply as FastifyReply, passthroughError(err)),
        );
      },
      onError: (reply, { error }) => void reply.send(passthroughError(error)),
    },
    handler: (request: FastifyRequest, reply: FastifyReply, _dest: string, options) => {
      request.exchange.upstream = upstream.name;
      const { path } = locate(request.method, request.raw.url!, prefix, upstream, target.pathname);
      // Not safe to repeat: streamed once.
      request.exchange.attempts = 1;
      return reply.from(path, options);
    },
  });
}

/** reply-from's failures, in writeguard's words. */
function passthroughError(error: Error & { code?: string }): WriteguardError {
  const timedOut = error.code === 'FST_REPLY_FROM_GATEWAY_TIMEOUT' || error.code === 'UND_ERR_CONNECT_TIMEOUT';
  return attemptFailureError(classifyFailure(error, timedOut), 'read');
}
