// Calling an MCP server through writeguard (DESIGN §11): the SDK's own client over Streamable HTTP,
// and raw JSON-RPC POSTs for what the client hides (ids, headers, the answer's format).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** The SDK client, connected (initialized) to `url`. */
export async function connectClient(url: string): Promise<Client> {
  const client = new Client({ name: 'writeguard-test-agent', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** A tool result's first text content. */
export function textOf(result: unknown): string {
  const content = (result as CallToolResult).content as Array<{ type: string; text?: string }>;
  return content[0]?.text ?? '';
}

/** A tool result's writeguard `_meta` entry (`code` or `replayed`). */
export function metaOf(result: unknown, name: 'code' | 'replayed'): unknown {
  return (result as CallToolResult)._meta?.[`io.writeguard/${name}`];
}

export interface RawAnswer {
  status: number;
  headers: Headers;
  contentType: string;
  /** The body as sent. */
  text: string;
  /** The `data` of each SSE event (one entry, the body itself, for a JSON answer). */
  messages: unknown[];
}

export const BOTH = 'application/json, text/event-stream';

/** One raw JSON-RPC POST (no initialize: the test server is stateless), answered within `timeoutMs`. */
export async function rawPost(url: string, body: unknown, accept = BOTH, timeoutMs = 5000): Promise<RawAnswer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { accept, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  const messages = /text\/event-stream/.test(contentType)
    ? text
        .split(/\n\n/)
        .map((event) =>
          event
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice('data:'.length).trimStart())
            .join('\n'),
        )
        .filter((data) => data !== '')
        .map((data) => JSON.parse(data) as unknown)
    : [JSON.parse(text) as unknown];
  return { status: res.status, headers: res.headers, contentType, text, messages };
}

/** A JSON-RPC tools/call request. */
export const toolsCall = (id: number, name: string, args: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args },
});
