// Header hygiene at the proxy boundary (RFC 9110 §7.6.1), both ways. Pure.
import type { IncomingHttpHeaders } from 'node:http';

export type HeaderMap = Record<string, string | string[] | undefined>;

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** Never forwarded upstream: the agent may not steer or impersonate the proxy's own hop. */
const AGENT_ONLY = new Set(['host', 'forwarded', 'expect', 'x-real-ip']);

function connectionTokens(value: string | string[] | undefined): string[] {
  // The usual values name only hop-by-hop headers, which are dropped anyway.
  if (value === undefined || value === 'keep-alive' || value === 'close') return [];
  const joined = Array.isArray(value) ? value.join(',') : value;
  return joined
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
}

function strip(headers: HeaderMap, drop: (name: string) => boolean): HeaderMap {
  const listed = connectionTokens(headers.connection);
  const out: HeaderMap = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || drop(name) || (listed.length > 0 && listed.includes(name))) continue;
    out[name] = value;
  }
  return out;
}

/** What goes upstream: the agent's headers less hop-by-hop and forwarding ones, Host set to the target. */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders | HeaderMap, targetHost: string): HeaderMap {
  const out = strip(headers, (n) => HOP_BY_HOP.has(n) || AGENT_ONLY.has(n) || n.startsWith('x-forwarded-'));
  out.host = targetHost;
  return out;
}

/** What goes back to the agent: the upstream's headers less hop-by-hop ones. */
export function agentResponseHeaders(headers: HeaderMap): HeaderMap {
  return strip(headers, (n) => HOP_BY_HOP.has(n));
}

/** First value of a header that may have been sent several times. */
export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Every value the agent sent for one header (lower-case `name`), as node's `headersDistinct` would
 * give it, without building that object for every header of every request.
 */
export function valuesOf(rawHeaders: readonly string[], name: string): string[] | undefined {
  let out: string[] | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i]!;
    if (n.length === name.length && n.toLowerCase() === name) (out ??= []).push(rawHeaders[i + 1]!);
  }
  return out;
}
