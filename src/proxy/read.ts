// Streamed reads (and passthrough writes) through @fastify/reply-from, answers inspected only when small.
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

function worthInspecting(res: UpstreamResponse, upstream: UpstreamConfig): boolean {
  if (res.statusCode < 400 && requestIdFromHeaders(res.headers, upstream) !== null) return false;
  const type = firstHeader(res.headers['content-type']);
  const length = Number(firstHeader(res.headers['content-length']));
  return type !== undefined && /[/+]json\b/i.test(type) && length > 0 && length <= INSPECT_MAX_BYTES;
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
    const chunks: Buffer[] = [];
    for await (const chunk of res.stream) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const found = extractAnswer(res.statusCode, res.headers, body, upstream);
    exchange.upstreamRequestId = found.requestId;
    exchange.upstreamCode = found.code;
    return reply.send(body);
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
