// A real MCP server for tests (@modelcontextprotocol/sdk's McpServer over Streamable HTTP, on
// loopback): a create_payment tool that counts its executions, a refund_payment and an unprotected
// get_balance tool. `json: true` answers tool calls as JSON, else as an event stream; a progress
// token gets a progress notification before the result. Stateless: one server per request.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

export interface TestMcpServer {
  url: string;
  /** Executions of each tool, by name. */
  executions: Map<string, number>;
  /** JSON-RPC messages received, by method (tools/list, tools/call, initialize, …; a batch counts each). */
  requests: Map<string, number>;
  /** The Idempotency-Key header and key argument each create_payment execution saw. */
  keys: Array<{ header: string | undefined; argument: unknown }>;
  /** Runs before create_payment answers (after it executed): drop the connection, delay, … */
  afterExecute: ((res: ServerResponse) => Promise<void> | void) | null;
  close(): Promise<void>;
}

export async function startMcpServer(options: { json: boolean }): Promise<TestMcpServer> {
  const state: TestMcpServer = {
    url: '',
    executions: new Map(),
    requests: new Map(),
    keys: [],
    afterExecute: null,
    close: async () => undefined,
  };
  const count = (tool: string): number => {
    const n = (state.executions.get(tool) ?? 0) + 1;
    state.executions.set(tool, n);
    return n;
  };

  function build(req: IncomingMessage, res: ServerResponse): McpServer {
    const server = new McpServer({ name: 'test-payments', version: '1.0.0' });
    server.registerTool(
      'create_payment',
      {
        description: 'Pay a recipient',
        inputSchema: {
          amount: z.string(),
          currency: z.string(),
          recipient: z.string(),
          memo: z.string().optional(),
          idempotency_key: z.string().optional(),
        },
      },
      async (args, extra) => {
        const n = count('create_payment');
        state.keys.push({ header: req.headers['idempotency-key'] as string | undefined, argument: args.idempotency_key });
        const token = extra._meta?.progressToken;
        if (token !== undefined)
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2 } });
        if (state.afterExecute !== null) await state.afterExecute(res);
        return { content: [{ type: 'text', text: `paid ${args.amount} ${args.currency} to ${args.recipient} (payment ${n})` }] };
      },
    );
    server.registerTool('refund_payment', { description: 'Refund', inputSchema: { payment: z.string() } }, async (args) => {
      count('refund_payment');
      return { content: [{ type: 'text', text: `refunded ${args.payment}` }] };
    });
    server.registerTool('get_balance', { description: 'Balance', inputSchema: {} }, async () => {
      const n = count('get_balance');
      return { content: [{ type: 'text', text: `balance read ${n}` }] };
    });
    return server;
  }

  const http: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const message: unknown = chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const m of Array.isArray(message) ? message : [message]) {
        const method = (m as { method?: unknown } | undefined)?.method;
        if (typeof method === 'string') state.requests.set(method, (state.requests.get(method) ?? 0) + 1);
      }
      const server = build(req, res);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: options.json });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      void server.connect(transport).then(() => transport.handleRequest(req, res, message));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  state.close = () =>
    new Promise<void>((resolve) => {
      http.closeAllConnections();
      http.close(() => resolve());
    });
  return state;
}
