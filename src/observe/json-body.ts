// A request's JSON body read without losing digits: parsed with lossless-json (numbers keep the
// text they were written with), read by dotted path, and printed canonically. Pure.
//
// It lives here, below idempotency and leash, so that fingerprints (idempotency) and intents,
// budgets and policy (leash) read a body the same way without importing each other.
import { isUtf8 } from 'node:buffer';
import { isLosslessNumber, parse } from 'lossless-json';

/**
 * The largest body parsed. Bodies are already bounded by `maxBodyBytes`; this caps the parse a
 * route with a larger bound (uploads) could otherwise spend on a body no leash rule reads.
 */
export const JSON_BODY_MAX_BYTES = 1_048_576;

/**
 * Sorted keys, numbers exactly as written (a LosslessNumber prints its own text: `24.50` stays
 * `24.50`, 18-decimal amounts stay distinct), strings and literals as JSON prints them.
 */
export function canonicalValue(value: unknown): string {
  if (isLosslessNumber(value)) return value.value;
  if (Array.isArray(value)) return `[${value.map(canonicalValue).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalValue((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The body as lossless JSON, or undefined when it is empty, not valid UTF-8 (two different invalid
 * sequences would decode alike), not JSON (duplicate members included: lossless-json refuses them
 * rather than pick one an upstream may not), too deep to parse, or over JSON_BODY_MAX_BYTES.
 */
export function parseLossless(body: Buffer): unknown {
  if (body.length === 0 || body.length > JSON_BODY_MAX_BYTES || !isUtf8(body)) return undefined;
  try {
    return parse(body.toString('utf8'));
  } catch {
    return undefined; // a SyntaxError, or a RangeError from nesting deeper than the stack
  }
}

/**
 * The value at a dotted path (`metadata.order_id`) through plain objects, or undefined when a step
 * is absent or not an object. Own members only: `constructor` or `__proto__` never reach a prototype.
 */
export function readRaw(json: unknown, path: string): unknown {
  let node: unknown = json;
  for (const part of path.split('.')) {
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/**
 * The value at `path` as text, for exact comparison with a config value: a string as is, a number
 * as written (a LosslessNumber's own text: `7`, `24.50`); anything else (object, array, boolean,
 * null, absent) is undefined, as if missing.
 */
export function readText(json: unknown, path: string): string | undefined {
  const value = readRaw(json, path);
  if (typeof value === 'string') return value;
  return isLosslessNumber(value) ? value.value : undefined;
}
