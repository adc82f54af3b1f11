// Streamed reads (and passthrough writes) through @fastify/reply-from, answers inspected only when small.
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { UpstreamConfig } from '../config/schema.js';
import { WriteguardError } from '../errors.js';
import { extractAnswer, requestIdFromHeaders } from '../observe/extract.js';
import { firstHeader, type HeaderMap } from './headers.js';
import { stampRequestId } from './answer.js';

/** Bodies up to this size are read to find a request id or error code; larger ones stream untouched. */
const INSPECT_MAX_BYTES = 64 * 1024;

interface UpstreamResponse {
  statusCode: number;
  headers: HeaderMap;
  stream: NodeJS.ReadableStream;
}

/** Errors always (their code matters), successes only when no header carries the request id. */
function worthInspecting(res: UpstreamResponse, upstream: UpstreamConfig): boolean {
  if (res.statusCode < 400 && requestIdFromHeaders(res.headers, upstream) !== null) return false;
  const type = firstHeader(res.headers['content-type']);
  if (type === undefined || !/[/+]json\b/i.test(type)) return false;
  const length = firstHeader(res.headers['content-length']);
  return length === undefined ? res.statusCode >= 400 : Number(length) > 0 && Number(length) <= INSPECT_MAX_BYTES;
}

/** Reads up to the inspection limit; `rest` is null when the whole body fit. */
async function readHead(stream: NodeJS.ReadableStream): Promise<{ head: Buffer; rest: AsyncIterator<Buffer> | null }> {
  const chunks: Buffer[] = [];
  let size = 0;
  const it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  for (;;) {
    const next = await it.next();
    if (next.done === true) return { head: Buffer.concat(chunks, size), rest: null };
    chunks.push(next.value);
    size += next.value.length;
    if (size > INSPECT_MAX_BYTES) return { head: Buffer.concat(chunks, size), rest: it };
  }
}

export function onReadResponse(upstream: UpstreamConfig) {
  return async (request: FastifyRequest, reply: FastifyReply, res: UpstreamResponse): Promise<void> => {
    const exchange = request.exchange;
    exchange.status = res.statusCode;
    stampRequestId(reply, exchange, upstream, res.headers);
    if (!worthInspecting(res, upstream)) {
      exchange.upstreamRequestId = requestIdFromHeaders(res.headers, upstream);
      return reply.send(res.stream);
    }
    const { head, rest } = await readHead(res.stream);
    if (rest !== null) {
      // Too large to inspect: send what was read, then the rest, unchanged.
      exchange.upstreamRequestId = requestIdFromHeaders(res.headers, upstream);
      return reply.send(Readable.from((async function* () {
        yield head;
        for (let next = await rest.next(); next.done !== true; next = await rest.next()) yield next.value;
      })()));
    }
    const found = extractAnswer(res.statusCode, res.headers, head, upstream);
    exchange.upstreamRequestId = found.requestId;
    exchange.upstreamCode = found.code;
    return reply.send(head);
  };
}

/** reply-from's failures, in writeguard's vocabulary. Reads are safe, so nothing here is "unknown". */
export function onReadError(reply: FastifyReply, { error }: { error: Error & { code?: string } }): void {
  const timedOut = error.code === 'FST_REPLY_FROM_GATEWAY_TIMEOUT' || error.code === 'UND_ERR_CONNECT_TIMEOUT';
  reply.send(
    timedOut
      ? new WriteguardError('upstream_timeout', 'the upstream did not answer in time', { cause: error })
      : new WriteguardError('upstream_unreachable', `the upstream could not be reached (${error.code ?? error.message})`, { cause: error }),
  );
}
