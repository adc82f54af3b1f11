// Finds the upstream's request id and error code in an answer, by configured header and field names. Pure.
import type { HeaderMap } from '../http/headers.js';
import { firstHeader } from '../http/headers.js';

export interface ExtractRules {
  requestIdHeaders: readonly string[];
  requestIdFields: readonly string[];
  codeFields: readonly string[];
}

export interface Extracted {
  requestId: string | null;
  code: string | null;
  /** The request id came in a header (else writeguard stamps its own `x-request-id`). */
  inHeader: boolean;
}

/** Reads "error.code" from a parsed JSON value; only strings and numbers count. */
export function readField(json: unknown, path: string): string | null {
  let node: unknown = json;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return null;
    node = (node as Record<string, unknown>)[part];
  }
  if (typeof node === 'string') return node === '' ? null : node;
  if (typeof node === 'number' && Number.isFinite(node)) return String(node);
  return null;
}

function firstField(json: unknown, fields: readonly string[]): string | null {
  for (const field of fields) {
    const value = readField(json, field);
    if (value !== null) return value;
  }
  return null;
}

export function requestIdFromHeaders(headers: HeaderMap, rules: ExtractRules): string | null {
  for (const name of rules.requestIdHeaders) {
    const value = firstHeader(headers[name]);
    if (value !== undefined && value !== '') return value;
  }
  return null;
}

/** JSON bodies only; anything unparsable yields nothing rather than an error. */
export function parseJsonBody(headers: HeaderMap, body: Buffer | null): unknown {
  if (body === null || body.length === 0) return undefined;
  const type = firstHeader(headers['content-type']);
  if (type === undefined || !/[/+]json\b/i.test(type)) return undefined;
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The request id from headers, else from the body; the code from the body, and only for
 * non-2xx answers (a success has no error code, whatever fields its resource happens to have).
 */
export function extractAnswer(status: number, headers: HeaderMap, body: Buffer | null, rules: ExtractRules): Extracted {
  const headerId = requestIdFromHeaders(headers, rules);
  const success = status >= 200 && status < 300;
  // The body is parsed only when it can tell something the headers did not.
  if (headerId !== null && success) return { requestId: headerId, code: null, inHeader: true };
  const json = parseJsonBody(headers, body);
  return {
    requestId: headerId ?? (json === undefined ? null : firstField(json, rules.requestIdFields)),
    code: success || json === undefined ? null : firstField(json, rules.codeFields),
    inHeader: headerId !== null,
  };
}
