// Raw HTTP/1.1 over a socket, for requests no client library will send (two Host headers, absolute-form targets).
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
  /** Everything the server wrote, for diagnostics. */
  text: string;
}

/** Parses one response from what a server wrote; null while it is incomplete. */
function parse(data: Buffer, ended: boolean): RawResponse | null {
  const end = data.indexOf('\r\n\r\n');
  if (end === -1) return null;
  const [statusLine, ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = data.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (body.length < length) return ended ? { status, headers, body, text: data.toString('latin1') } : null;
    body = body.subarray(0, length);
  } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const chunks: Buffer[] = [];
    let at = 0;
    for (let i = 0; i < 10_000; i++) {
      const lineEnd = body.indexOf('\r\n', at);
      if (lineEnd === -1) return ended ? { status, headers, body: Buffer.concat(chunks), text: data.toString('latin1') } : null;
      const size = parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
      if (size === 0) break;
      if (body.length < lineEnd + 2 + size)
        return ended ? { status, headers, body: Buffer.concat(chunks), text: data.toString('latin1') } : null;
      chunks.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
    body = Buffer.concat(chunks);
  } else if (!ended && !(status === 204 || status === 304 || (status >= 100 && status < 200))) {
    return null;
  }
  return { status, headers, body, text: data.toString('latin1') };
}

/**
 * Writes `request` (already formatted, CRLFs included) to host:port and resolves with the first
 * response, or null when the server closed the connection without answering.
 */
export function rawRequest(
  port: number,
  request: string | Buffer,
  options: { host?: string; timeoutMs?: number } = {},
): Promise<RawResponse | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: options.host ?? '127.0.0.1', port });
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (value: RawResponse | null, err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err !== undefined) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(
      () => finish(null, new Error(`no complete response within the time limit; got: ${data.toString('latin1').slice(0, 500)}`)),
      options.timeoutMs ?? 5000,
    );
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const parsed = parse(data, false);
      if (parsed !== null) finish(parsed);
    });
    socket.on('end', () => finish(parse(data, true)));
    socket.on('close', () => finish(parse(data, true)));
    // A reset after the answer was written still leaves the answer to read.
    socket.on('error', (err) => (data.length > 0 ? finish(parse(data, true)) : finish(null, err)));
  });
}

/** The port of a base URL such as "http://127.0.0.1:8787". */
export function portOf(url: string): number {
  return Number(new URL(url).port);
}
