// The intent of a write (DESIGN §10.1): what it does, whatever its wording. Two writes with the same
// upstream, method, route, fingerprint headers, credential and values of the configured fields have
// the same intent, however their free text and member order differ. Pure.
import { hash } from 'node:crypto';
import { canonicalValue, readRaw } from '../observe/json-body.js';

export interface IntentInput {
  upstream: string;
  method: string;
  /** The matched routes[] pattern, or the request path without its query when no route entry matches. */
  route: string;
  /** `name, value` of each fingerprint header present, lower-case names. */
  headers: ReadonlyArray<readonly [string, string]>;
  /** A hash of the caller's upstream credential: another account's write is another intent. */
  credential?: string | undefined;
  /** The config's `fields`: `body:amount`, `body:metadata.order_id`. */
  fields: readonly string[];
  /** The body as parseLossless returned it (undefined when it is not JSON: every field is missing). */
  json: unknown;
}

/** A length-prefixed part: no value can end early and pass the rest off as the next part. */
const part = (text: string): string => `${Buffer.byteLength(text)}:${text}`;

/**
 * sha256 (base64url) of every part. A field's value is its canonical JSON (numbers as written:
 * `"24.50"`, `24.50` and `24.5` all differ), tagged `v`; a missing one is tagged `m`, distinct from
 * every value, `null` included. Fields are taken in sorted order, so reordering the config's list
 * does not change the intents of writes already in the window. The parts are hashed joined, in one
 * call: the same bytes (and digest) as one update per part, without a native call for each.
 */
export function intentHash(input: IntentInput): string {
  const parts = ['writeguard-intent-v1', input.upstream, input.method, input.route, String(input.headers.length)];
  for (const [name, value] of input.headers) parts.push(name, value);
  parts.push(input.credential === undefined ? '-' : `c${input.credential}`);
  const fields = [...input.fields].sort();
  parts.push(String(fields.length));
  for (const field of fields) {
    const value = readRaw(input.json, field.slice('body:'.length));
    parts.push(field, value === undefined ? 'm' : `v${canonicalValue(value)}`);
  }
  return hash('sha256', parts.map(part).join(''), 'base64url');
}
