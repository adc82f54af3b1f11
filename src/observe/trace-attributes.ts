// Span attributes from what writeguard knows of a request and of each upstream attempt: the stable
// HTTP semantic conventions where one exists, `writeguard.*` for the idempotency facts the response
// line carries. No query string: it may hold secrets, and the log line leaves it out too. Pure.
import type { Attributes } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { AttemptRequest, AttemptResult, StreamedAnswer } from '../http/attempt.js';
import type { ResponseFacts } from './trace-types.js';

/** `host[:port]` (a Host header) → address and port; an IPv6 literal loses its brackets. */
export function hostParts(host: string): { address: string; port: number | undefined } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host.trim());
  if (m === null) return { address: host, port: undefined };
  const address = m[1]!.startsWith('[') ? m[1]!.slice(1, -1) : m[1]!;
  return { address, port: m[2] === undefined ? undefined : Number(m[2]) };
}

const withoutQuery = (path: string): string => {
  const q = path.indexOf('?');
  return q === -1 ? path : path.slice(0, q);
};

/** The request's span as it starts. `host`: the agent's Host header (the server's name as it was addressed). */
export function requestAttributes(method: string, path: string, host: string | undefined): Attributes {
  const attributes: Attributes = { [ATTR_HTTP_REQUEST_METHOD]: method, [ATTR_URL_PATH]: withoutQuery(path), [ATTR_URL_SCHEME]: 'http' };
  if (host === undefined) return attributes;
  const { address, port } = hostParts(host);
  attributes[ATTR_SERVER_ADDRESS] = address;
  if (port !== undefined) attributes[ATTR_SERVER_PORT] = port;
  return attributes;
}

/** The request's span as it ends, and its error (5xx only: a 4xx is the agent's, as for any HTTP server span). */
export function responseAttributes(facts: ResponseFacts): { attributes: Attributes; error: string | null } {
  const attributes: Attributes = {
    [ATTR_HTTP_RESPONSE_STATUS_CODE]: facts.status,
    'writeguard.outcome': facts.outcome,
    'writeguard.attempts': facts.attempts,
  };
  if (facts.upstream !== null) attributes['writeguard.upstream'] = facts.upstream;
  if (facts.code !== null) attributes['writeguard.code'] = facts.code;
  if (facts.keySource !== null) attributes['writeguard.key_source'] = facts.keySource;
  if (facts.keyHash !== null) attributes['writeguard.idempotency_key'] = facts.keyHash;
  if (facts.clientGone) attributes['writeguard.client_gone'] = true;
  const error = facts.status >= 500 ? (facts.code ?? String(facts.status)) : null;
  if (error !== null) attributes[ATTR_ERROR_TYPE] = error;
  return { attributes, error };
}

interface Server {
  address: string;
  port: number;
  origin: string;
}

/** Upstream origins come from the config, so they are few: each is parsed once, not per attempt. */
const servers = new Map<string, Server>();

function serverOf(originText: string): Server {
  let server = servers.get(originText);
  if (server === undefined) {
    const { hostname, port, protocol, origin } = new URL(originText);
    const address = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
    servers.set(originText, (server = { address, port: port === '' ? (protocol === 'https:' ? 443 : 80) : Number(port), origin }));
  }
  return server;
}

/** An attempt's span as it starts; `resendCount`: the attempts of this request before it. */
export function attemptAttributes(upstream: string, req: AttemptRequest, resendCount: number): Attributes {
  const server = serverOf(req.origin);
  const attributes: Attributes = {
    [ATTR_HTTP_REQUEST_METHOD]: req.method,
    [ATTR_SERVER_ADDRESS]: server.address,
    [ATTR_SERVER_PORT]: server.port,
    [ATTR_URL_FULL]: `${server.origin}${withoutQuery(req.path)}`,
    'writeguard.upstream': upstream,
  };
  if (resendCount > 0) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = resendCount;
  return attributes;
}

/**
 * An attempt's span as it ends: the upstream's status (any 4xx or 5xx is the attempt's error, as
 * for any HTTP client span), or the failure — `not_sent` proves nothing reached the upstream,
 * `no_answer` means it may have.
 */
export function attemptEndAttributes(result: AttemptResult | StreamedAnswer): { attributes: Attributes; error: string | null } {
  if (result.kind === 'answer' || result.kind === 'stream') {
    const error = result.status >= 400 ? String(result.status) : null;
    const attributes: Attributes = { [ATTR_HTTP_RESPONSE_STATUS_CODE]: result.status };
    if (error !== null) attributes[ATTR_ERROR_TYPE] = error;
    return { attributes, error };
  }
  return { attributes: { [ATTR_ERROR_TYPE]: result.reason, 'writeguard.attempt.failure': result.kind }, error: result.reason };
}
