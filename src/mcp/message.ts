// What an MCP POST holds (DESIGN §11), pure: one JSON-RPC tools/call for a protected tool, a batch
// that holds one (refused), or anything else (streamed through untouched).
import type { McpConfig, McpToolConfig } from '../config/mcp-schema.js';
import { parseLossless } from '../observe/json-body.js';

/** A protected tool call: its JSON-RPC id (as parsed: a number keeps its written text) and its tool. */
export interface ToolCall {
  id: unknown;
  tool: string;
  config: McpToolConfig;
}

export type McpMessage = { kind: 'call'; call: ToolCall } | { kind: 'protected_batch' } | { kind: 'other' };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The protected tool a message calls, or null (a notification, another method, an unlisted tool). */
function protectedCall(message: unknown, tools: McpConfig['tools']): ToolCall | null {
  if (!isObject(message) || message['method'] !== 'tools/call' || !('id' in message) || message['id'] === null) return null;
  const params = message['params'];
  const tool = isObject(params) ? params['name'] : undefined;
  if (typeof tool !== 'string' || !Object.hasOwn(tools, tool)) return null;
  return { id: message['id'], tool, config: tools[tool]! };
}

export function classifyMessage(body: Buffer, mcp: McpConfig): McpMessage {
  const json = parseLossless(body);
  if (Array.isArray(json)) return json.some((m) => protectedCall(m, mcp.tools) !== null) ? { kind: 'protected_batch' } : { kind: 'other' };
  const call = protectedCall(json, mcp.tools);
  return call === null ? { kind: 'other' } : { kind: 'call', call };
}
