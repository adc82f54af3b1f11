// A POST to an MCP upstream (DESIGN §11), its body already buffered: one tools/call for a protected
// tool goes through the guard (claimed, sent at most once, replayed); a batch holding one is
// refused; anything else is sent once, its answer streamed back as it comes.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { attemptFailureError } from '../http/attempt.js';
import { upstreamRequestHeaders } from '../http/headers.js';
import type { WriteRequest } from '../idempotency/write.js';
import { bodyWithKey, CALL_FINGERPRINT_FIELDS, callSettings } from '../mcp/call.js';
import { classifyMessage, type ToolCall } from '../mcp/message.js';
import { settleAnswer, toolCallWatch } from '../mcp/stream.js';
import { attemptOnce } from '../retry/instrumented.js';
import type { WriteTarget } from './context.js';
import { EventRelay, renderBatchRefusal, renderCallResult, renderRead } from './render.js';
import type { Located } from './route.js';

/** `base`: the write request an HTTP write would make of it. */
export async function handleMcpPost(
  request: FastifyRequest,
  reply: FastifyReply,
  located: Located,
  to: WriteTarget,
  base: WriteRequest,
): Promise<FastifyReply> {
  const message = classifyMessage(base.body, to.upstream.mcp!);
  if (message.kind === 'protected_batch') return renderBatchRefusal(request, reply);
  if (message.kind === 'other') return forwardOnce(request, reply, located, to, base.body);
  return guardCall(request, reply, to, base, message.call);
}

async function guardCall(
  request: FastifyRequest,
  reply: FastifyReply,
  to: WriteTarget,
  base: WriteRequest,
  call: ToolCall,
): Promise<FastifyReply> {
  const { body } = base;
  const settings = callSettings(base.idempotency, call);
  const relay = new EventRelay(reply, request.exchange);
  const result = await to.handleWrite({
    ...base,
    idempotency: settings.idempotency,
    intent: settings.intent,
    call: {
      tool: call.tool,
      fingerprintFields: CALL_FINGERPRINT_FIELDS,
      bodyFor: (upstreamKey) => bodyWithKey(body, call, upstreamKey),
      watch: () => toolCallWatch(call.id, relay),
      settle: (result) => settleAnswer(result, call.id),
    },
  });
  renderCallResult(request, reply, base.upstream, result, call.id, relay);
  return reply;
}

/** Not a protected call: sent once (never retried: it may change state), the answer streamed back as it comes. */
async function forwardOnce(
  request: FastifyRequest,
  reply: FastifyReply,
  located: Located,
  to: WriteTarget,
  body: Buffer,
): Promise<FastifyReply> {
  const { exchange } = request;
  exchange.attempts = 1;
  const target = to.attemptTarget(request);
  const result = await attemptOnce(
    target,
    'write',
    {
      origin: to.target.origin,
      path: located.path,
      method: request.method,
      headers: upstreamRequestHeaders(request.headers, to.target.host),
      body,
      timeoutMs: target.upstream.timeoutMs,
    },
    0,
  );
  if (result.kind !== 'answer' && result.kind !== 'stream') throw attemptFailureError(result, 'read');
  const answer = { status: result.status, headers: result.headers, body: result.kind === 'stream' ? result.stream : result.body };
  return renderRead(reply, exchange, target.upstream, answer, null);
}
