// Sends an upstream's answer (live or stored) to the agent and records it for the response line.
import type { FastifyReply } from 'fastify';
import type { UpstreamConfig } from '../config/schema.js';
import { extractAnswer, type Extracted } from '../observe/extract.js';
import type { Exchange } from '../observe/response-log.js';
import { agentResponseHeaders, type HeaderMap } from './headers.js';

export interface Answer {
  status: number;
  headers: HeaderMap;
  body: Buffer;
}

/** The agent-facing request id: the upstream's own when it sent one in a header, else writeguard's. */
export function stampRequestId(reply: FastifyReply, exchange: Exchange, headerRequestId: string | null): void {
  if (headerRequestId === null) reply.header('x-request-id', exchange.id);
}

/** `found`: what the caller already extracted from this answer, so it is not read twice. */
export function sendAnswer(reply: FastifyReply, exchange: Exchange, upstream: UpstreamConfig, answer: Answer, found: Extracted = extractAnswer(answer.status, answer.headers, answer.body, upstream)): void {
  exchange.upstreamRequestId = found.requestId;
  exchange.upstreamCode = found.code;
  exchange.status = answer.status;
  if (reply.raw.destroyed) return;
  reply.headers(agentResponseHeaders(answer.headers));
  stampRequestId(reply, exchange, found.inHeader ? found.requestId : null);
  reply.code(answer.status).send(answer.body);
}
