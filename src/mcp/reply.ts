// What a tool call's caller receives from writeguard itself (DESIGN §11), pure: a stored response
// replayed under the new call's id, a refusal as a tool result an LLM can act on, and the JSON-RPC
// error for a batch holding a protected call.
import { parse, stringify } from 'lossless-json';
import type { ErrorCode } from '../errors.js';

export const REPLAYED_META = 'io.writeguard/replayed';
export const CODE_META = 'io.writeguard/code';

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The stored JSON-RPC response, answering the call `id` now: the id replaced, and a tool result
 * marked `_meta["io.writeguard/replayed"]` (an error response carries the mark in `error.data`).
 * Null when what was stored is not a JSON-RPC response (it is then replayed as it is).
 */
export function replayMessage(stored: Buffer, id: unknown): string | null {
  let message: unknown;
  try {
    message = parse(stored.toString('utf8'));
  } catch {
    return null;
  }
  if (!isObject(message) || !('result' in message || 'error' in message)) return null;
  message['id'] = id;
  const result = message['result'];
  if (isObject(result)) result['_meta'] = { ...(isObject(result['_meta']) ? result['_meta'] : {}), [REPLAYED_META]: true };
  const error = message['error'];
  if (isObject(error) && (error['data'] === undefined || isObject(error['data'])))
    error['data'] = { ...(isObject(error['data']) ? error['data'] : {}), [REPLAYED_META]: true };
  return stringify(message) ?? '';
}

/** What a refused call's text tells the LLM, where the HTTP detail would not fit a tool call. */
const TOOL_WORDS: Partial<Record<ErrorCode, string>> = {
  idempotency_key_in_use: 'This same call is still running. Call the tool again shortly with the same arguments to get its result.',
  outcome_unknown:
    'This same call may already have run: its outcome is unknown. Do not call it again. An operator must reconcile it ' +
    '(writeguard dlq list / resolve); then a repeat gets its result.',
  possible_duplicate:
    'The same call was made recently. If you mean a second, separate call, call the tool again with a new value in its idempotency key argument.',
};

/** A refusal as a tool result: `isError`, a text saying what happened and what to do, the code in `_meta`. */
export function refusalMessage(id: unknown, code: ErrorCode, detail: string): string {
  const words = TOOL_WORDS[code];
  const text = `writeguard refused this tool call (${code}): ${words === undefined ? detail : `${words} (${detail})`}`;
  return (
    stringify({
      jsonrpc: '2.0',
      id,
      result: { content: [{ type: 'text', text }], isError: true, _meta: { [CODE_META]: code } },
    }) ?? ''
  );
}

/** MCP no longer batches; a batch holding a protected call is refused whole (nothing is sent). */
export function batchRefusal(): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id: null,
    error: {
      code: -32600,
      message: 'writeguard: a JSON-RPC batch may not hold a protected tools/call; send each tool call as a request of its own',
    },
  });
}
