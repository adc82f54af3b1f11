// How a protected MCP tool call rides the write path (DESIGN §11), pure: where its key comes from,
// what its intent and fingerprint are, and the body sent under the upstream key.
import { parse, stringify } from 'lossless-json';
import type { IdempotencyConfig, IntentConfig } from '../config/schema.js';
import type { ToolCall } from './message.js';

/** The fields of a call's fingerprint: its tool and arguments — never the JSON-RPC id, `_meta` (progress token) or session. */
export const CALL_FINGERPRINT_FIELDS = ['body:params.name', 'body:params.arguments'] as const;

export interface CallSettings {
  /** The upstream's idempotency settings, keyed for a tool call. */
  idempotency: IdempotencyConfig;
  /** The call's intent: its tool and its `intent` arguments (every argument when none are listed). */
  intent: IntentConfig;
}

/**
 * A call's key: the `Idempotency-Key` header, `params._meta.idempotencyKey`, or the tool's key
 * argument; without one, derived from its intent. An MCP client cannot say `Idempotency-Intent`,
 * so a keyless repeat joins the first call (a new key argument value makes a deliberate second).
 */
export function callSettings(idempotency: IdempotencyConfig, call: ToolCall): CallSettings {
  const keyFrom = ['header', 'body:params._meta.idempotencyKey', ...(call.config.key === undefined ? [] : [call.config.key])];
  return {
    // The key always goes to the server as Idempotency-Key (and in the key argument: bodyWithKey).
    idempotency: { ...idempotency, keyFrom, missing: 'derive', forwardKey: true },
    intent: {
      fields: ['body:params.name', ...(call.config.intent ?? ['body:params.arguments'])],
      windowSec: idempotency.deriveWindowSec,
      keyed: 'off',
    },
  };
}

/**
 * The body sent under `upstreamKey`: as the caller sent it, or — when the tool has a key argument
 * the caller left empty — with the upstream key there, so the server can dedupe on it too.
 */
export function bodyWithKey(body: Buffer, call: ToolCall, upstreamKey: string): Buffer {
  const key = call.config.key;
  if (key === undefined) return body;
  const message = parse(body.toString('utf8')) as Record<string, unknown>;
  const path = key.slice('body:'.length).split('.');
  let node = message;
  for (const part of path.slice(0, -1)) {
    const next = node[part];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) return body;
    node = next as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  if (node[last] !== undefined && node[last] !== null && node[last] !== '') return body;
  node[last] = upstreamKey;
  return Buffer.from(stringify(message) ?? '', 'utf8');
}
