// The protected write's route: the body buffered and bounded, handed to the guard (an MCP upstream's
// POSTs to mcp-route.ts), its result rendered. The response line waits for the write's own end: the agent may leave while the
// upstream still works.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { upstreamRequestHeaders } from '../http/headers.js';
import type { WriteRequest } from '../idempotency/write.js';
import { readBody } from './body.js';
import type { WriteTarget } from './context.js';
import { handleMcpPost } from './mcp-route.js';
import { renderWriteResult } from './render.js';
import { upstreamPath, type Located } from './route.js';

export async function handleProtectedWrite(
  request: FastifyRequest,
  reply: FastifyReply,
  located: Located,
  to: WriteTarget,
): Promise<FastifyReply> {
  const { policy } = located;
  const body = await readBody(request.body as Readable | undefined, request.headers['content-length'], policy.idempotency.maxBodyBytes);
  const exchange = request.exchange;
  exchange.hold();
  try {
    const req: WriteRequest = {
      method: request.method,
      rawHeaders: request.raw.rawHeaders,
      headers: upstreamRequestHeaders(request.headers, to.target.host),
      apiPath: located.apiPath,
      path: located.path,
      logPath: exchange.path,
      body,
      upstream: to.upstream,
      dispatcher: to.dispatcher,
      origin: to.target.origin,
      idempotency: policy.idempotency,
      policy: policy.rules,
      approval: policy.approval,
      intent: policy.intent,
      routePattern: policy.pattern,
      reconcile:
        policy.reconcile === null ? null : { config: policy.reconcile, path: upstreamPath(to.target.pathname, policy.reconcile.path) },
      call: null,
      client: reply.raw,
      trace: exchange.trace,
    };
    if (to.upstream.mcp !== null) return await handleMcpPost(request, reply, located, to, req);
    renderWriteResult(request, reply, to.upstream, await to.handleWrite(req));
  } finally {
    exchange.release();
  }
  return reply;
}
