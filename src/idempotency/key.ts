// Which idempotency key a write carries, validated and in bare form. Pure.
import { hash } from 'node:crypto';
import { WriteguardError } from '../errors.js';
import { readText } from '../observe/json-body.js';

export type KeySourceKind = 'client' | 'body';

export interface FoundKey {
  key: string;
  source: KeySourceKind;
}

const MAX_KEY_LENGTH = 255;
const VISIBLE_ASCII = /^[\x21-\x7e]+$/;

/** An RFC 8941 sf-string (`"abc"`, with \" and \\ escapes) is unquoted; anything else is taken as sent. */
function bare(value: string): string | null {
  if (value.length < 2 || !value.startsWith('"') || !value.endsWith('"')) return value;
  let out = '';
  for (let i = 1; i < value.length - 1; i++) {
    const c = value[i]!;
    if (c === '"') return null;
    if (c === '\\') {
      const next = value[++i];
      if (i >= value.length - 1 || (next !== '"' && next !== '\\')) return null;
      out += next;
    } else out += c;
  }
  return out;
}

export function validateKey(raw: string, origin: string): string {
  const key = bare(raw);
  if (key === null || key.length === 0 || key.length > MAX_KEY_LENGTH || !VISIBLE_ASCII.test(key)) {
    throw new WriteguardError('idempotency_key_invalid', `the ${origin} must be 1-${MAX_KEY_LENGTH} visible ASCII characters`);
  }
  return key;
}

export interface KeyInputs {
  /** Every value received for the key header (node:http `headersDistinct`). */
  headerValues: readonly string[] | undefined;
  headerName: string;
  keyFrom: readonly string[];
  /** The parsed JSON body, when one is needed and parses; undefined otherwise. */
  json: () => unknown;
}

/** The first key found in `keyFrom` order; null when the request carries none. */
export function findKey(inputs: KeyInputs): FoundKey | null {
  for (const source of inputs.keyFrom) {
    if (source === 'header') {
      const values = inputs.headerValues;
      if (values === undefined || values.length === 0) continue;
      // Node would merge two headers into "a, b": two keys are never one.
      if (values.length > 1) throw new WriteguardError('idempotency_key_invalid', `more than one ${inputs.headerName} header`);
      return { key: validateKey(values[0]!, `${inputs.headerName} header`), source: 'client' };
    }
    const field = source.slice('body:'.length);
    const value = readText(inputs.json(), field);
    if (value !== undefined && value !== '') return { key: validateKey(value, `body field ${field}`), source: 'body' };
  }
  return null;
}

/** Records are addressed by a hash: the key itself is never stored in clear. */
export function keyHash(key: string): string {
  return hash('sha256', key, 'hex');
}
