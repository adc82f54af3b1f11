// The only code that writes a reply: upstream answers (live, replayed or streamed), writeguard's own
// problems, and the raw answer to a request Node could not parse. Each also records what the
// response line says about it.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { pipeline, Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { UpstreamConfig } from '../config/schema.js';
import { PROBLEM_CONTENT_TYPE, type WriteguardError, toProblem } from '../errors.js';
import type { Answer } from '../http/attempt.js';
import { agentResponseHeaders, firstHeader, type HeaderMap } from '../http/headers.js';
import type { WriteResult } from '../idempotency/write.js';
import type { Exchange } from '../observe/exchange.js';
import { extractAnswer, requestIdFromHeaders, type Extracted } from '../observe/extract.js';
import type { Logger } from '../observe/logger.js';
import { batchRefusal, refusalMessage, replayMessage } from '../mcp/reply.js';
import { isEventStream, serializeEvent, type EventSink } from '../mcp/stream.js';

/** Bodies up to this size are read to find a request id or error code; larger ones stream untouched. */
export const INSPECT_MAX_BYTES = 64 * 1024;

/** The agent-facing request id: the upstream's own when it sent one in a header, else writeguard's. */
function stampRequestId(reply: FastifyReply, exchange: Exchange, headerRequestId: string | null): void {
  if (headerRequestId === null) reply.header('x-request-id', exchange.id);
}

/** writeguard's own error, as problem+json. */
export function renderProblem(request: FastifyRequest, reply: FastifyReply, err: WriteguardError): FastifyReply {
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

/** A whole upstream answer (live or stored). `found`: what was already read from it. */
function renderAnswer(
  reply: FastifyReply,
  exchange: Exchange,
  upstream: UpstreamConfig,
  answer: Answer,
  found: Extracted = extractAnswer(answer.status, answer.headers, answer.body, upstream),
): void {
  exchange.upstreamRequestId = found.requestId;
  exchange.upstreamCode = found.code;
  exchange.status = answer.status;
  if (reply.raw.destroyed) return;
  reply.headers(agentResponseHeaders(answer.headers));
  stampRequestId(reply, exchange, found.inHeader ? found.requestId : null);
  reply.code(answer.status).send(answer.body);
}

/** What the response line says of a protected write, from its result. */
function noteLine(exchange: Exchange, result: WriteResult): WriteResult {
  const { line } = result;
  exchange.keySource = line.keySource;
  exchange.idempotencyKeyHash = line.keyHash;
  exchange.attempts = line.attempts;
  if (line.outcome !== null) exchange.outcome = line.outcome;
  return result;
}

/** A protected write's result: its headers, its line, then the answer, the replay or the problem. */
export function renderWriteResult(request: FastifyRequest, reply: FastifyReply, upstream: UpstreamConfig, result: WriteResult): void {
  const exchange = request.exchange;
  const { line } = noteLine(exchange, result);
  if (!reply.raw.destroyed) reply.headers(result.headers);
  switch (result.kind) {
    case 'answer':
      return renderAnswer(reply, exchange, upstream, result.answer, result.found);
    case 'replay': {
      // A replay logs the original request id.
      const found = extractAnswer(result.answer.status, result.answer.headers, result.answer.body, upstream);
      return renderAnswer(
        reply,
        exchange,
        upstream,
        result.answer,
        result.requestId === null ? found : { ...found, requestId: result.requestId },
      );
    }
    case 'error':
      if (line.upstreamCode !== undefined) exchange.upstreamCode = line.upstreamCode;
      if (line.upstreamRequestId !== undefined) exchange.upstreamRequestId = line.upstreamRequestId;
      renderProblem(request, reply, result.error);
  }
}

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

/**
 * A read's or a passthrough's answer (status and headers already set on the reply), its body whole
 * or streamed; small answers are read for their request id and code, large ones pass untouched.
 */
export async function renderUpstream(
  reply: FastifyReply,
  exchange: Exchange,
  upstream: UpstreamConfig,
  status: number,
  headers: HeaderMap,
  body: Buffer | NodeJS.ReadableStream,
): Promise<FastifyReply> {
  exchange.status = status;
  const headerRequestId = requestIdFromHeaders(headers, upstream);
  stampRequestId(reply, exchange, headerRequestId);
  exchange.upstreamRequestId = headerRequestId;
  if (!Buffer.isBuffer(body) && isEventStream(headers)) return relayEventStream(reply, exchange, status, body);
  if (!worthInspecting(status, headers, headerRequestId)) return reply.send(body);
  let head: Buffer;
  if (Buffer.isBuffer(body)) head = body;
  else {
    const read = await readHead(body as AsyncIterable<Buffer>);
    if (read.rest !== null) {
      // Too large to inspect: send what was read, then the rest, unchanged.
      const rest = read.rest;
      const out = Readable.from(
        (async function* () {
          yield read.head;
          for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value;
        })(),
      );
      // An agent that leaves destroys only this wrapper; the upstream's body, paused and with no
      // timer running, would hold its connection for good. (A generator never started skips its finally.)
      out.once('close', () => (body as Readable).destroy());
      return reply.send(out);
    }
    head = read.head;
  }
  const found = extractAnswer(status, headers, head, upstream);
  exchange.upstreamRequestId = found.requestId;
  exchange.upstreamCode = found.code;
  return reply.send(head);
}

/**
 * An event stream (an MCP server's GET stream, any SSE answer): its head leaves at once — a stream
 * may stay silent for long — and its events as they come. If the upstream stream fails later, the
 * agent's stream ends with it (its client reconnects), never a second answer.
 */
function relayEventStream(reply: FastifyReply, exchange: Exchange, status: number, body: NodeJS.ReadableStream): FastifyReply {
  reply.header('x-writeguard-attempts', String(exchange.attempts));
  exchange.answering();
  reply.hijack();
  const res = reply.raw;
  if (!res.destroyed) {
    res.writeHead(status, reply.getHeaders() as OutgoingHttpHeaders);
    res.flushHeaders();
  }
  // With the agent already gone, pipeline destroys the body at once: the upstream's stream is closed, not left open.
  pipeline(body, res, (err) => {
    if (err) res.destroy();
  });
  return reply;
}

/** A read's final answer: status and headers (and a Retry-After when passed back early), then the body. */
export function renderRead(
  reply: FastifyReply,
  exchange: Exchange,
  upstream: UpstreamConfig,
  answer: { status: number; headers: HeaderMap; body: Buffer | NodeJS.ReadableStream },
  retryAfter: string | null,
): Promise<FastifyReply> {
  try {
    reply.code(answer.status).headers(agentResponseHeaders(answer.headers));
  } catch (err) {
    // fastify sends no status outside 100–599: refused before a byte left, the body must not keep its connection.
    if (!Buffer.isBuffer(answer.body)) (answer.body as Readable).destroy();
    throw err;
  }
  if (retryAfter !== null) reply.header('retry-after', retryAfter);
  return renderUpstream(reply, exchange, upstream, answer.status, answer.headers, answer.body);
}

// ---- MCP tool calls (DESIGN §11): answered as JSON-RPC, in JSON or as an event stream ----------

/**
 * The caller's event stream for a tool call whose server answers with one: opened by the first
 * relayed event (progress, logging…), which leaves at once; the response itself comes last, after
 * it is stored (renderCallResult). Until an event is relayed the reply is an ordinary one.
 */
export class EventRelay implements EventSink {
  opened = false;
  constructor(
    private readonly reply: FastifyReply,
    private readonly exchange: Exchange,
  ) {}

  event(text: string): void {
    const res = this.reply.raw;
    if (res.destroyed) return;
    if (!this.opened) {
      this.opened = true;
      this.reply.hijack();
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-request-id': this.exchange.id });
    }
    res.write(text);
  }

  /** The last event (the response), then the end; the line first, as for any answer. */
  end(status: number, text: string): void {
    this.exchange.status = status;
    this.exchange.answering();
    if (!this.reply.raw.destroyed) this.reply.raw.end(serializeEvent(text));
  }
}

/** A JSON-RPC message writeguard answers itself: JSON, or one event when the caller takes only event streams. */
function renderMessage(request: FastifyRequest, reply: FastifyReply, relay: EventRelay, status: number, text: string): void {
  if (relay.opened) return relay.end(status, text);
  request.exchange.status = status;
  if (reply.raw.destroyed) return;
  const accept = firstHeader(request.headers.accept) ?? '*/*';
  const sse = !/application\/json|\*\/\*/i.test(accept) && /text\/event-stream/i.test(accept);
  reply.code(status).header('x-request-id', request.exchange.id);
  if (sse) reply.header('content-type', 'text/event-stream').header('cache-control', 'no-cache').send(serializeEvent(text));
  else reply.header('content-type', 'application/json').send(text);
}

/** A protected tool call's result: the server's response (live or replayed under this call's id) or a refusal as a tool result. */
export function renderCallResult(
  request: FastifyRequest,
  reply: FastifyReply,
  upstream: UpstreamConfig,
  result: WriteResult,
  id: unknown,
  relay: EventRelay,
): void {
  const exchange = request.exchange;
  noteLine(exchange, result);
  if (!reply.raw.destroyed && !relay.opened) reply.headers(result.headers);
  if (result.kind === 'error') {
    if (result.line.upstreamCode !== undefined) exchange.upstreamCode = result.line.upstreamCode;
    if (result.line.upstreamRequestId !== undefined) exchange.upstreamRequestId = result.line.upstreamRequestId;
    exchange.ownCode = result.error.code;
    if (exchange.outcome === 'forwarded') exchange.outcome = result.error.code === 'outcome_unknown' ? 'unknown' : 'rejected';
    return renderMessage(request, reply, relay, 200, refusalMessage(id, result.error.code, result.error.message));
  }
  const { answer } = result;
  const found = extractAnswer(answer.status, answer.headers, answer.body, upstream);
  exchange.upstreamRequestId = result.kind === 'replay' && result.requestId !== null ? result.requestId : found.requestId;
  exchange.upstreamCode = found.code;
  const text = result.kind === 'replay' ? replayMessage(answer.body, id) : relay.opened ? answer.body.toString('utf8') : null;
  if (text !== null) return renderMessage(request, reply, relay, answer.status, text);
  // The server's own answer (this call's id already), or a stored one that is not a JSON-RPC response.
  renderAnswer(reply, exchange, upstream, answer, found);
}

/** A JSON-RPC batch holding a protected call: refused whole, nothing sent. */
export function renderBatchRefusal(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  request.exchange.ownCode = 'bad_request';
  request.exchange.outcome = 'rejected';
  request.exchange.status = 400;
  return reply.code(400).header('content-type', 'application/json').header('x-request-id', request.exchange.id).send(batchRefusal());
}

/** A request Node's parser refused never reaches a route: answered on the socket, and logged. */
export function renderClientError(socket: Socket, error: WriteguardError, log: Logger): void {
  const id = randomUUID();
  const body = JSON.stringify(toProblem(error, id));
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\nX-Request-Id: ${id}\r\n\r\n${body}`,
  );
  log.info(
    { request_id: id, code: error.code, status: error.status, method: null, upstream: null, path: null, outcome: 'rejected', attempts: 0 },
    'response',
  );
}
