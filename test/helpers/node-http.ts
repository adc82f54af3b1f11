// node:http requests, for what fetch will not send or show: any header (Host, Connection lists,
// Proxy-Authorization, a Content-Length of our choosing), a body streamed in chunks, every response
// header as sent. No keep-alive agent: each request has its own connection. Bounded: 5 s.
import { request, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface NodeAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  body: Buffer;
}

/** `body` as one piece, or as chunks written one by one (chunked framing, no Content-Length). */
export function nodeRequest(
  url: string,
  method: string,
  headers: OutgoingHttpHeaders = {},
  body?: string | Buffer | Buffer[],
): Promise<NodeAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    if (Array.isArray(body)) {
      for (const chunk of body) req.write(chunk);
      req.end();
    } else {
      req.end(body);
    }
  });
}
