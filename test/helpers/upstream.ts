// A real loopback upstream that records and counts every request it receives.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handled } from './handled.js';

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  body: Buffer;
}

/** Answers a request; the default echoes it as JSON (201 for writes, 200 for reads). */
export type Responder = (req: Received, res: ServerResponse) => void | Promise<void>;

export interface CountingUpstream {
  url: string;
  port: number;
  received: Received[];
  /** Requests received for a path (without query string). */
  count(path?: string): number;
  /** Replaces how the upstream answers from now on. */
  respond(responder: Responder): void;
  /** Connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

export const echo: Responder = (req, res) => {
  const status = req.method === 'GET' || req.method === 'HEAD' ? 200 : 201;
  const body = JSON.stringify({ method: req.method, url: req.url, body: req.body.toString('utf8') });
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${Math.random().toString(36).slice(2, 10)}` });
  res.end(body);
};

/**
 * An answer that depends only on the request (status by method, a JSON body naming it, fixed headers
 * including two Set-Cookie), so a direct and a proxied answer can be compared byte for byte.
 */
export const deterministic: Responder = (req, res) => {
  const body = Buffer.from(JSON.stringify({ method: req.method, url: req.url, length: req.body.length }));
  const status = req.method === 'POST' ? 201 : req.method === 'DELETE' ? 202 : 200;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': body.length,
    'request-id': `req_${req.method}_${req.url.length}`,
    'x-ratelimit-remaining': '99',
    'cache-control': 'no-store',
    'set-cookie': ['a=1; Path=/', 'b=2; Path=/'],
  });
  res.end(req.method === 'HEAD' ? undefined : body);
};

export async function startUpstream(responder: Responder = echo, host = '127.0.0.1'): Promise<CountingUpstream> {
  const received: Received[] = [];
  let current = responder;
  let connections = 0;
  const respond = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const entry: Received = {
      method: req.method!,
      url: req.url!,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      body: Buffer.concat(chunks),
    };
    received.push(entry);
    await current(entry, res);
  };
  const server = createServer(handled(respond));
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    received,
    count: (path) => (path === undefined ? received.length : received.filter((r) => r.url.split('?')[0] === path).length),
    respond: (r) => {
      current = r;
    },
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
