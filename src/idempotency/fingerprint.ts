// What makes two requests "the same request": method, target, chosen headers and the body. Pure.
import { hash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { parse } from 'lossless-json';
import { canonicalValue } from '../observe/json-body.js';

export type FingerprintMode = 'bytes' | 'canonical-json';

/**
 * Bodies larger than this are fingerprinted as bytes in `canonical-json` mode, unparsed. Canonical
 * JSON costs CPU on the event loop in proportion to the number of tokens: measured at 1 MiB
 * (`maxBodyBytes`' default), the worst shapes (64-deep objects, many tiny arrays or numbers) took
 * 0.2–0.45 s, stalling every other request. Payment, ledger and tool call bodies are a few KiB;
 * 64 KiB leaves them wide room while capping one body's canonical form at about 10 ms. Above it
 * nothing is lost but key-order tolerance: an SDK's retry resends the same bytes, and a client
 * that re-serialises differently gets a mismatch (422), never a second run.
 */
export const CANONICAL_JSON_MAX_BYTES = 65_536;
/** Deeper nesting falls back to bytes. */
const MAX_DEPTH = 64;

/** Nesting depth outside strings, counted without parsing (a 10,000-deep body must not recurse). */
function depthWithin(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return false;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return true;
}

/**
 * Sorted keys, numbers exactly as written (no rounding through doubles: 18-decimal amounts stay
 * distinct). Null when the body is not plain JSON, is not valid UTF-8 (two different invalid
 * sequences would both decode to U+FFFD), or is over the bound: then the bytes are fingerprinted.
 */
export function canonicalJson(body: Buffer): string | null {
  if (body.length > CANONICAL_JSON_MAX_BYTES || !isUtf8(body)) return null;
  const text = body.toString('utf8');
  if (!depthWithin(text, MAX_DEPTH)) return null;
  try {
    return canonicalValue(parse(text)); // lossless-json refuses duplicate members
  } catch {
    return null;
  }
}

/**
 * A multipart body with its boundary replaced by a fixed token: SDKs pick a new random boundary
 * each time they re-send the same upload, and a retry must still be the same request.
 */
export function withoutBoundary(body: Buffer, contentType: string | undefined): Buffer {
  const match = contentType === undefined ? null : /^multipart\/[^;]+;(?:.*;)?\s*boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const boundary = match === null ? undefined : (match[1] ?? match[2]);
  if (boundary === undefined) return body;
  const needle = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let from = 0;
  for (let at = body.indexOf(needle, from); at !== -1; at = body.indexOf(needle, from)) {
    parts.push(body.subarray(from, at), MULTIPART_TOKEN);
    from = at + needle.length;
  }
  parts.push(body.subarray(from));
  return Buffer.concat(parts);
}

const MULTIPART_TOKEN = Buffer.from('--\u0000writeguard-boundary');

export interface FingerprintInput {
  method: string;
  /** Path and query as the API documents them. */
  apiPath: string;
  /** `name: value` of each fingerprint header present, lower-case names. */
  headers: ReadonlyArray<readonly [string, string]>;
  body: Buffer;
  /** The request's content type: a multipart boundary does not count. */
  contentType?: string | undefined;
  mode: FingerprintMode;
  /** A hash of the caller's upstream credential: another account's request is another request. */
  credential?: string | undefined;
}

export function fingerprint(input: FingerprintInput): string {
  let head = `${input.method}\n${input.apiPath}\n`;
  for (const [name, value] of input.headers) head += `${name}:${value}\n`;
  if (input.credential !== undefined) head += `credential:${input.credential}\n`;
  const canonical = input.mode === 'canonical-json' ? canonicalJson(input.body) : null;
  const tail = canonical === null ? withoutBoundary(input.body, input.contentType) : Buffer.from(canonical);
  // One hash of the joined bytes: the digest of an update per part, without a native call for each.
  return hash('sha256', Buffer.concat([Buffer.from(`${head}${canonical === null ? 'b' : 'j'}\n`), tail]), 'base64url');
}
