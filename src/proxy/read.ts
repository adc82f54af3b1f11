// Reads: safe methods go through writeguard's retry loop with undici; the final answer goes back
// whole when small (most API answers), streamed when large. Passthrough writes stream through
// @fastify/reply-from, once. Answers are inspected only when small.
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { UpstreamConfig } from '../config/schema.js';
import { WriteguardError } from '../errors.js';
import { extractAnswer, requestIdFromHeaders } from '../observe/extract.js';
import type { Logger } from '../observe/logger.js';
import { retryReason, type Metrics } from '../observe/metrics.js';
import type { Exchange } from '../observe/response-log.js';
import { noteRateLimit, passCooldown, type RetryKit } from '../retry/cooldown.js';
import { retryAfterSeconds } from '../retry/delay.js';
import { retryLoop } from '../retry/loop.js';
import { agentResponseHeaders, firstHeader, type HeaderMap } from './headers.js';
import { stampRequestId } from './answer.js';
import type { ForwardContext } from './plugin.js';
import { sendAttempt, type AttemptFailure, type AttemptResult, type StreamedAnswer } from './write.js';

/** Bodies up to this size are read to find a request id or error code; larger ones stream untouched. */
const INSPECT_MAX_BYTES = 64 * 1024;
/** Answers a read may be retried on: nothing is changed by asking again. */
const READ_RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** Errors always (their code matters), successes only when no header carries the request id. */
function worthInspecting(status: number, headers: HeaderMap, headerRequestId: string | null): boolean {
  if (status < 400 && headerRequestId !== null) return false;
  const type = firstHeader(headers['content-type']);
  if (type === undefined || !/[/+]json\b/i.test(type)) return false;
  const length = firstHeader(headers['content-length']);
  return length === undefined ? status >= 400 : Number(length) > 0 && Number(length) <= INSPECT_MAX_BYTES;
}

/** Reads up to the inspection limit; `rest` is null when the whole body fit. */
async function readHead(stream: AsyncIterable<Buffer>): Promise<{ head: Buffer; rest: AsyncIterator<Buffer> | null }> {
  const chunks: Buffer[] = [];
  let size = 0;
  const it = stream[Symbol.asyncIterator]();
  for (;;) {
    const next = await it.next();
    if (next.done === true) return { head: Buffer.concat(chunks, size), rest: null };
    chunks.push(next.value);
    size += next.value.length;
    if (size > INSPECT_MAX_BYTES) return { head: Buffer.concat(chunks, size), rest: it };
  }
}

/** Sends an upstream answer to the agent (headers already set), noting its request id and code. */
async function sendUpstreamAnswer(reply: FastifyReply, exchange: Exchange, upstream: UpstreamConfig, status: number, headers: HeaderMap, body: Buffer | NodeJS.ReadableStream): Promise<FastifyReply> {
  exchange.status = status;
  const headerRequestId = requestIdFromHeaders(headers, upstream);
  stampRequestId(reply, exchange, headerRequestId);
  exchange.upstreamRequestId = headerRequestId;
  if (!worthInspecting(status, headers, headerRequestId)) return reply.send(body);
  let head: Buffer;
  if (Buffer.isBuffer(body)) head = body;
  else {
    const read = await readHead(body as AsyncIterable<Buffer>);
    if (read.rest !== null) {
      // Too large to inspect: send what was read, then the rest, unchanged.
      const rest = read.rest;
      return reply.send(Readable.from((async function* () {
        yield read.head;
        for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value;
      })()));
    }
    head = read.head;
  }
  const found = extractAnswer(status, headers, head, upstream);
  exchange.upstreamRequestId = found.requestId;
  exchange.upstreamCode = found.code;
  return reply.send(head);
}

export interface ReadContext extends ForwardContext {
  /** The agent's scope, for its cooldown. */
  scope: string;
  kit: RetryKit;
  log: Logger;
  metrics: Metrics;
}

type ReadAttempt = AttemptResult | StreamedAnswer;

function isAnswer(r: ReadAttempt): r is Exclude<ReadAttempt, AttemptFailure> {
  return r.kind === 'answer' || r.kind === 'stream';
}

function failureError(failure: AttemptFailure): WriteguardError {
  return failure.kind === 'no_answer' && failure.timedOut
    ? new WriteguardError('upstream_timeout', 'the upstream did not answer in time')
    : new WriteguardError('upstream_unreachable', `the upstream could not be reached (${failure.reason})`);
}

/** A safe method: retried on 408/429/5xx and connection failures, inside the attempt, time and budget limits. */
export async function forwardRead(ctx: ReadContext): Promise<FastifyReply> {
  const { upstream, reply, exchange, kit } = ctx;
  const startedAt = Date.now();
  await passCooldown(kit, ctx.scope, upstream, startedAt);
  // A retried answer's body is discarded only when the next attempt starts: if the wait is cut short
  // (shutdown, agent gone), that answer is what goes back, body intact.
  let previous: ReadAttempt | null = null;
  const loop = await retryLoop<ReadAttempt>({
    policy: upstream.retry,
    budget: kit.budgets.get(upstream.name)!,
    startedAt,
    signal: kit.signal,
    attempt: async () => {
      if (previous?.kind === 'stream') previous.stream.destroy();
      const result = await sendAttempt(ctx.dispatcher, { origin: ctx.origin, path: ctx.path, method: ctx.request.method, headers: ctx.headers, body: null, timeoutMs: upstream.timeoutMs }, INSPECT_MAX_BYTES);
      const answered = isAnswer(result);
      ctx.metrics.attempt(upstream.name, 'read', answered ? result.status : null);
      if (answered && result.status === 429) noteRateLimit(kit, ctx.scope, upstream, result.headers);
      return (previous = result);
    },
    retryable: (r) => !isAnswer(r) || READ_RETRY_STATUSES.has(r.status),
    headersOf: (r) => (isAnswer(r) ? r.headers : null),
    mayContinue: () => !reply.raw.destroyed,
    onRetry: (n, delayMs, r) => {
      const answered = isAnswer(r);
      ctx.metrics.retry(upstream.name, 'read', retryReason(answered ? r.status : null, answered ? undefined : r.reason));
      ctx.log.info({ upstream: upstream.name, attempt: n, status: answered ? r.status : null, failure: answered ? undefined : r.reason, delay_ms: delayMs }, 'attempt');
    },
  });
  exchange.attempts = loop.attempts;
  const last = loop.result;
  if (!isAnswer(last)) throw failureError(last);
  const headers = last.headers;
  reply.code(last.status).headers(agentResponseHeaders(headers));
  // Passed back early rather than slept: tell the agent when to come back.
  if (loop.stopped === 'elapsed' && headers['retry-after'] === undefined && loop.retryAfterMs !== null) reply.header('retry-after', retryAfterSeconds(loop.retryAfterMs));
  return sendUpstreamAnswer(reply, exchange, upstream, last.status, headers, last.kind === 'stream' ? last.stream : last.body);
}

/** reply-from's hook for passthrough writes (streamed once, never retried). */
export function onPassthroughResponse(upstream: UpstreamConfig) {
  return (request: FastifyRequest, reply: FastifyReply, res: { statusCode: number; headers: HeaderMap; stream: NodeJS.ReadableStream }): Promise<FastifyReply> =>
    sendUpstreamAnswer(reply, request.exchange, upstream, res.statusCode, res.headers, res.stream);
}

/** reply-from's failures, in writeguard's vocabulary. */
export function onPassthroughError(reply: FastifyReply, { error }: { error: Error & { code?: string } }): void {
  const timedOut = error.code === 'FST_REPLY_FROM_GATEWAY_TIMEOUT' || error.code === 'UND_ERR_CONNECT_TIMEOUT';
  reply.send(
    timedOut
      ? new WriteguardError('upstream_timeout', 'the upstream did not answer in time', { cause: error })
      : new WriteguardError('upstream_unreachable', `the upstream could not be reached (${error.code ?? error.message})`, { cause: error }),
  );
}
