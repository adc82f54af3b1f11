// One write attempt upstream with undici: the exact bytes out, the whole answer back, every failure classified.
import type { Dispatcher } from 'undici';
import type { HeaderMap } from './headers.js';

export interface WriteRequest {
  origin: string;
  path: string;
  method: string;
  headers: HeaderMap;
  /** null for a bodiless request (a reconcile probe). */
  body: Buffer | null;
  timeoutMs: number;
}

export type AttemptResult =
  | { kind: 'answer'; status: number; headers: HeaderMap; body: Buffer }
  /** Provably nothing reached the upstream (refused, DNS): safe to release or retry. */
  | { kind: 'not_sent'; reason: string }
  /** Bytes may have reached the upstream and no answer came back: the outcome is unknown. */
  | { kind: 'no_answer'; reason: string; timedOut: boolean };

// Errors raised before the request could be written to a socket.
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED']);
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

export async function sendWrite(dispatcher: Dispatcher, req: WriteRequest): Promise<AttemptResult> {
  const signal = AbortSignal.timeout(req.timeoutMs);
  try {
    const res = await dispatcher.request({
      origin: req.origin,
      path: req.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: req.headers as Record<string, string | string[]>,
      body: req.body,
      signal,
      headersTimeout: req.timeoutMs,
      bodyTimeout: req.timeoutMs,
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { kind: 'answer', status: res.statusCode, headers: res.headers as HeaderMap, body };
  } catch (err) {
    return classifyFailure(err, signal.aborted);
  }
}

export type AttemptFailure = Exclude<AttemptResult, { kind: 'answer' }>;

function errorCode(err: unknown): string {
  let e: unknown = err;
  // undici wraps socket errors: the cause chain carries the system code.
  for (let depth = 0; depth < 4 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'UND_ERR_SOCKET') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return (err as { code?: string } | null)?.code ?? (err as Error | null)?.name ?? 'unknown';
}

/** An undici failure: provably nothing sent, or no answer to what may have been sent. */
export function classifyFailure(err: unknown, deadlinePassed: boolean): AttemptFailure {
  const code = errorCode(err);
  if (NOT_SENT.has(code)) return { kind: 'not_sent', reason: code };
  const timedOut = deadlinePassed || TIMEOUTS.has(code);
  return { kind: 'no_answer', reason: timedOut ? 'timeout' : code, timedOut };
}
