// One attempt upstream with undici's dispatch API: the exact bytes out, the answer back (whole, or
// streamed when a read's body is large), every failure classified. No response stream, promise per
// chunk or AbortSignal for the common small answer: they were most of a read's cost in profiles.
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { WriteguardError } from '../errors.js';
import type { HeaderMap } from './headers.js';

export interface AttemptRequest {
  origin: string;
  path: string;
  method: string;
  headers: HeaderMap;
  /** null for a bodiless request (a read, a reconcile probe). */
  body: Buffer | null;
  /**
   * Bounds the wait for the headers and between body chunks; for a write, the whole exchange (one
   * deadline of writeguard's own, which lets an answer already in the socket be read first).
   */
  timeoutMs: number;
  /** A write whose answer is read as it arrives (an MCP tool call's event stream). */
  watch?: AnswerWatch;
}

/**
 * Reads a write's answer as it arrives: chunk by chunk, ending the attempt as soon as the answer is
 * complete (the rest is not awaited). While a watched body flows, the deadline is per chunk: a long
 * call that keeps sending events is not cut.
 */
export interface AnswerWatch {
  /** The answer's head: true to watch its body. */
  start(status: number, headers: HeaderMap): boolean;
  /** A chunk of a watched body, as it arrives: true once the answer is complete. */
  chunk(chunk: Buffer): boolean;
  /** The attempt's result from what was watched (`complete`: chunk said so, else the body ended first). */
  finish(status: number, headers: HeaderMap, complete: boolean): AttemptResult;
}

/** An upstream's answer, whole (live, or stored for replay). */
export interface Answer {
  status: number;
  headers: HeaderMap;
  body: Buffer;
}

export type AttemptResult =
  /** `refused`: the upstream turned the request away before acting on it (an MCP server's transport refusal): nothing ran. */
  | ({ kind: 'answer'; refused?: true } & Answer)
  /** Provably nothing reached the upstream (refused, DNS): safe to release or retry. */
  | { kind: 'not_sent'; reason: string }
  /** Bytes may have reached the upstream and no answer came back: the outcome is unknown. */
  | { kind: 'no_answer'; reason: string; timedOut: boolean };

export type AttemptFailure = Exclude<AttemptResult, { kind: 'answer' }>;

/** A read's answer too large (or of unknown length) to buffer: its body arrives as a stream. */
export interface StreamedAnswer {
  kind: 'stream';
  status: number;
  headers: HeaderMap;
  stream: Readable;
}

// Errors raised before the request could be written to a socket.
const NOT_SENT = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
]);
const TIMEOUTS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

const attemptTimeout = (): Error => new Error('the attempt timed out');

/**
 * When a write's deadline fires it first gives pending I/O turns of the event loop: after a stall
 * longer than timeoutMs (SIGSTOP/SIGCONT, a long GC, a synchronous hog) Node runs expired timers
 * before it polls sockets, and a complete answer waiting in the socket buffer must not become
 * outcome_unknown. One turn (setImmediate runs after the poll phase) reads what the socket holds; a
 * large answer takes a few (a socket reads about 64 KiB per turn), so the wait goes on while each turn
 * brings more of the answer, at most this many turns. An upstream that has sent nothing, or trickles
 * (no new bytes in a turn), is cut off after one turn: a slow upstream still times out.
 */
const DEADLINE_GRACE_TURNS = 64;

/** A write's attempt (or a reconcile probe): the whole answer buffered. */
export function sendAttempt(dispatcher: Dispatcher, req: AttemptRequest): Promise<AttemptResult>;
/** A read's attempt: answers with a body over `streamAbove` bytes (or of unknown length) stream. */
export function sendAttempt(dispatcher: Dispatcher, req: AttemptRequest, streamAbove: number): Promise<AttemptResult | StreamedAnswer>;
export function sendAttempt(dispatcher: Dispatcher, req: AttemptRequest, streamAbove = Infinity): Promise<AttemptResult | StreamedAnswer> {
  return new Promise((resolve) => {
    let controller: Dispatcher.DispatchController | null = null;
    let timedOut = false;
    let settled = false;
    let status = 0;
    let headers: HeaderMap = {};
    let chunks: Buffer[] = [];
    let size = 0;
    let stream: Readable | null = null;
    /** Bytes of the answer received so far (the status line counts as one): the deadline's grace watches it. */
    let progress = 0;
    const write = streamAbove === Infinity;
    /** The deadline, once it has given pending I/O a turn, and more while each turn brings bytes of the answer. */
    const expire = (seen: number, turn: number): void => {
      if (settled) return;
      if (progress !== seen && turn < DEADLINE_GRACE_TURNS) return void setImmediate(expire, progress, turn + 1);
      timedOut = true;
      if (controller !== null) return controller.abort(attemptTimeout());
      // Still queued for a connection: answered now, and cancelled before a byte is written if it
      // ever starts. Counted as no answer, as any timeout is.
      settle(classifyFailure(attemptTimeout(), true));
    };
    // A write's whole exchange has one deadline, writeguard's (undici's headers and body timeouts are
    // off: after a stall their timer would destroy the socket before an answer in it is read). A read
    // is bounded by undici's timeouts alone (a large download may outlast timeoutMs as long as bytes
    // keep coming).
    const arm = (): NodeJS.Timeout => setTimeout(() => setImmediate(expire, progress, 1), req.timeoutMs);
    let timer = !write ? null : arm();
    let watching = false;
    const settle = (result: AttemptResult | StreamedAnswer): void => {
      if (settled) return;
      if (timer !== null) clearTimeout(timer);
      settled = true;
      resolve(result);
    };
    const watchChunk = (c: Dispatcher.DispatchController, chunk: Buffer): void => {
      if (settled) return;
      if (timer !== null) {
        clearTimeout(timer);
        timer = arm();
      }
      if (!req.watch!.chunk(chunk)) return;
      settle(req.watch!.finish(status, headers, true));
      // The answer is complete: what else the stream might bring is not awaited.
      c.abort(new Error('the answer is complete'));
    };
    dispatcher.dispatch(
      {
        origin: req.origin,
        path: req.path,
        method: req.method as Dispatcher.HttpMethod,
        headers: req.headers as Record<string, string | string[]>,
        body: req.body,
        headersTimeout: write ? 0 : req.timeoutMs,
        bodyTimeout: write ? 0 : req.timeoutMs,
      },
      {
        onRequestStart(c) {
          controller = c;
          if (timedOut) c.abort(attemptTimeout());
        },
        onResponseStart(c, statusCode, responseHeaders) {
          progress++;
          if (statusCode < 200) return; // 1xx: the real answer follows
          status = statusCode;
          headers = responseHeaders as HeaderMap;
          watching = req.watch?.start(status, headers) ?? false;
          if (watching) return;
          const length = headers['content-length'];
          const known = typeof length === 'string' && /^\d+$/.test(length);
          if (known ? Number(length) <= streamAbove : streamAbove === Infinity) return;
          // Streamed from here: paused while the agent's socket is full, cancelled if it goes away.
          const body = new Readable({
            read: () => c.resume(),
            destroy: (err, done) => {
              if (!c.aborted && !body.readableEnded) c.abort(err ?? new Error('the agent stopped reading'));
              done(err);
            },
          });
          // As undici's own bodies: an error with no listener would be thrown (an uncaught exception
          // stops writeguard), and this body may wait unread (a retry's pause, an agent gone) when
          // the upstream fails; its readers (pipeline, fastify, iterators) still see the error.
          body.on('error', () => undefined);
          stream = body;
          settle({ kind: 'stream', status, headers, stream: body });
        },
        onResponseData(c, chunk) {
          progress += chunk.length;
          if (stream !== null) {
            if (!stream.push(chunk)) c.pause();
            return;
          }
          if (watching) return void watchChunk(c, chunk);
          chunks.push(chunk);
          size += chunk.length;
        },
        onResponseEnd() {
          if (stream !== null) return void stream.push(null);
          if (watching) return settle(req.watch!.finish(status, headers, false));
          const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
          chunks = [];
          settle({ kind: 'answer', status, headers, body });
        },
        onResponseError(_c, err) {
          if (settled) return void (stream !== null && stream.destroy(err));
          settle(classifyFailure(err, timedOut));
        },
      },
    );
  });
}

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

/**
 * A failed attempt as the error the agent receives — the one mapping. For a protected write, bytes
 * that may have left with no answer mean the write may have run (`outcome_unknown`, 504 on a
 * timeout); for a read or a passthrough, that is a timeout or an unreachable upstream.
 */
export function attemptFailureError(failure: AttemptFailure, kind: 'read' | 'write', idempotencyKey?: string): WriteguardError {
  if (failure.kind === 'not_sent') {
    return new WriteguardError('upstream_unreachable', `the upstream could not be reached (${failure.reason}); nothing was sent`, {
      idempotencyKey,
    });
  }
  if (kind === 'read') {
    return failure.timedOut
      ? new WriteguardError('upstream_timeout', 'the upstream did not answer in time')
      : new WriteguardError('upstream_unreachable', `the connection to the upstream failed before a complete answer (${failure.reason})`);
  }
  return new WriteguardError(
    'outcome_unknown',
    failure.timedOut
      ? 'the upstream did not answer in time; the write may have run'
      : `the connection failed after sending (${failure.reason}); the write may have run`,
    { status: failure.timedOut ? 504 : 502, idempotencyKey },
  );
}
