// What the proxy's parts share: one request on its way to one upstream, and the app's dependencies.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { Config, UpstreamConfig } from '../config/schema.js';
import type { HeaderMap } from '../http/headers.js';
import type { WriteRequest, WriteResult } from '../idempotency/write.js';
import type { Exchange } from '../observe/exchange.js';
import type { Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import type { Tracing } from '../observe/trace-types.js';
import type { RetryKit } from '../retry/cooldown.js';
import type { AttemptTarget } from '../retry/instrumented.js';

declare module 'fastify' {
  interface FastifyRequest {
    exchange: Exchange;
  }
}

export interface ProxyDeps {
  config: Config;
  log: Logger;
  dispatchers: ReadonlyMap<string, Dispatcher>;
  lifecycle: { draining: boolean };
  handleWrite: (req: WriteRequest) => Promise<WriteResult>;
  kit: RetryKit;
  metrics: Metrics;
  /** null when tracing is off (the default). */
  tracing: Tracing | null;
}

/** What a write route needs of its upstream. */
export interface WriteTarget {
  upstream: UpstreamConfig;
  dispatcher: Dispatcher;
  target: URL;
  handleWrite: (req: WriteRequest) => Promise<WriteResult>;
  /** An attempt's instruments for a request that is sent once outside the guard (an MCP message that is not a protected call). */
  attemptTarget: (request: FastifyRequest) => AttemptTarget;
}

/** One request on its way to one upstream: what the read and write routes are handed. */
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
