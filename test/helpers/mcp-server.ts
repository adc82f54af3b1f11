// A real MCP server for tests (@modelcontextprotocol/sdk's McpServer over Streamable HTTP, on
// loopback): a create_payment tool that counts its executions, a refund_payment and an unprotected
// get_balance tool (and, with `slowPayment`, a slow_payment that reports progress at intervals
// before answering). `json: true` answers tool calls as JSON, else as an event stream; a progress
// token gets a progress notification before the result. Stateless (one server per request) unless
// `stateful`: then one server and transport per session (`Mcp-Session-Id`), as the SDK's README shows.
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type RequestId } from '@modelcontextprotocol/sdk/types.js';
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
  /** HTTP requests received, by method (POST, GET, DELETE). */
  httpRequests: Map<string, number>;
  /** Each GET (the standalone event stream) received, with its session id and its response. */
  streams: Array<{ session: string | undefined; res: ServerResponse }>;
  /** Stateful: the open sessions' servers, by session id (a DELETE closes one). */
  sessions: Map<string, McpServer>;
  close(): Promise<void>;
}

/** How a tool handler finds the HTTP exchange that carried its call. */
type ExchangeOf = (requestId: RequestId) => { headers: IncomingHttpHeaders; res: ServerResponse } | undefined;

export async function startMcpServer(options: { json: boolean; stateful?: boolean; slowPayment?: boolean }): Promise<TestMcpServer> {
  const state: TestMcpServer = {
    url: '',
    executions: new Map(),
    requests: new Map(),
    keys: [],
    afterExecute: null,
    httpRequests: new Map(),
    streams: [],
    sessions: new Map(),
    close: async () => undefined,
  };
  const closing = new AbortController();
  /** A pause cut short (never failing) when the server closes. */
  const pause = (ms: number) => sleep(ms, undefined, { signal: closing.signal }).catch(() => undefined);
  const count = (tool: string): number => {
    const n = (state.executions.get(tool) ?? 0) + 1;
    state.executions.set(tool, n);
    return n;
  };

  function build(exchangeOf: ExchangeOf): McpServer {
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
        const exchange = exchangeOf(extra.requestId);
        state.keys.push({ header: exchange?.headers['idempotency-key'] as string | undefined, argument: args.idempotency_key });
        const token = extra._meta?.progressToken;
        if (token !== undefined)
          await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: 1, total: 2 } });
        if (state.afterExecute !== null && exchange !== undefined) await state.afterExecute(exchange.res);
        return { content: [{ type: 'text', text: `paid ${args.amount} ${args.currency} to ${args.recipient} (payment ${n})` }] };
      },
    );
    if (options.slowPayment)
      server.registerTool(
        'slow_payment',
        {
          description: 'Pay, reporting progress `steps` times every `interval_ms`, then answering after `silence_ms` (default interval_ms)',
          inputSchema: {
            amount: z.string(),
            recipient: z.string(),
            steps: z.number().int().min(1).max(50),
            interval_ms: z.number().int().min(0).max(5000),
            silence_ms: z.number().int().min(0).max(10_000).optional(),
            idempotency_key: z.string().optional(),
          },
        },
        async (args, extra) => {
          const n = count('slow_payment');
          const token = extra._meta?.progressToken;
          for (let step = 1; step <= args.steps; step++) {
            if (step > 1) await pause(args.interval_ms);
            if (token !== undefined && !closing.signal.aborted)
              await extra.sendNotification({
                method: 'notifications/progress',
                params: { progressToken: token, progress: step, total: args.steps },
              });
          }
          await pause(args.silence_ms ?? args.interval_ms);
          return { content: [{ type: 'text', text: `paid ${args.amount} to ${args.recipient} (slow payment ${n})` }] };
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

  /** Stateful: each session's transport, and the exchange that carried each of its requests. */
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const exchanges = new Map<string, Map<RequestId, { headers: IncomingHttpHeaders; res: ServerResponse }>>();

  /** Stateful: the session's transport, or a new session for an initialize request; else null (refused 404/400). */
  async function sessionTransport(req: IncomingMessage, message: unknown): Promise<StreamableHTTPServerTransport | null> {
    const id = req.headers['mcp-session-id'];
    if (typeof id === 'string') return transports.get(id) ?? null;
    if (!isInitializeRequest(message)) return null;
    const calls = new Map<RequestId, { headers: IncomingHttpHeaders; res: ServerResponse }>();
    const server = build((requestId) => calls.get(requestId));
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: options.json,
      onsessioninitialized: (sid) => {
        transports.set(sid, transport);
        exchanges.set(sid, calls);
        state.sessions.set(sid, server);
      },
      onsessionclosed: (sid) => {
        transports.delete(sid);
        exchanges.delete(sid);
        state.sessions.delete(sid);
      },
    });
    await server.connect(transport);
    return transport;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, message: unknown): Promise<void> {
    if (!options.stateful) {
      const server = build(() => ({ headers: req.headers, res }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: options.json });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      return transport.handleRequest(req, res, message);
    }
    const transport = await sessionTransport(req, message);
    if (transport === null) {
      const missing = req.headers['mcp-session-id'] === undefined;
      res.writeHead(missing ? 400 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: missing ? 'No session' : 'Session not found' } }));
      return;
    }
    const calls = exchanges.get(transport.sessionId ?? '');
    for (const m of Array.isArray(message) ? message : [message]) {
      const id = (m as { id?: RequestId } | undefined)?.id;
      if (calls === undefined || id === undefined) continue;
      calls.set(id, { headers: req.headers, res });
      res.on('close', () => calls.delete(id));
    }
    return transport.handleRequest(req, res, message);
  }

  const http: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    state.httpRequests.set(req.method ?? '', (state.httpRequests.get(req.method ?? '') ?? 0) + 1);
    if (req.method === 'GET') state.streams.push({ session: req.headers['mcp-session-id'] as string | undefined, res });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const message: unknown = chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const m of Array.isArray(message) ? message : [message]) {
        const method = (m as { method?: unknown } | undefined)?.method;
        if (typeof method === 'string') state.requests.set(method, (state.requests.get(method) ?? 0) + 1);
      }
      void handle(req, res, message).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  state.close = () =>
    new Promise<void>((resolve) => {
      closing.abort();
      for (const transport of transports.values()) void transport.close();
      http.closeAllConnections();
      http.close(() => resolve());
    });
  return state;
}
