// Buffers a write's body, bounded, so the exact bytes can be fingerprinted and re-sent unchanged.
import type { Readable } from 'node:stream';
import { WriteguardError } from '../errors.js';

const tooLarge = (message: string): WriteguardError => new WriteguardError('body_too_large', message, { headers: { connection: 'close' } });

/**
 * How much of a refused body is still read, and thrown away, before the 413 goes out.
 *
 * The 413 carries `connection: close`. Closing a socket with request bytes still unread makes the
 * kernel send a reset, and a client still writing its body (fetch/undici, node:http) then sees
 * EPIPE / ECONNRESET instead of the 413 — and SDKs retry a connection error. So the rest of the
 * body is drained first, as nginx's lingering close does, but bounded: past `bytes` (counted from
 * the body's first byte) or `ms` (from the moment the body is known to be too large) writeguard
 * stops reading and answers anyway; a reset is then possible, a hang never.
 */
export interface DrainBounds {
  bytes: number;
  ms: number;
}

/** A refused body is drained up to max(32 MiB, 4 × maxBodyBytes), for at most 5 s. */
export const DRAIN_MIN_BYTES = 32 * 1024 * 1024;
const DRAIN_BODY_MULTIPLE = 4;
export const DRAIN_MS = 5_000;

export function drainBounds(maxBytes: number): DrainBounds {
  return { bytes: Math.max(DRAIN_MIN_BYTES, DRAIN_BODY_MULTIPLE * maxBytes), ms: DRAIN_MS };
}

// Stream events rather than `for await`: the async iterator costs a promise per chunk and its own
// end-of-stream tracking, a visible share of a replay's CPU in profiles.
export function readBody(
  stream: Readable | undefined,
  declaredLength: string | undefined,
  maxBytes: number,
  drain: DrainBounds = drainBounds(maxBytes),
): Promise<Buffer> {
  const declaredTooLarge = declaredLength !== undefined && Number(declaredLength) > maxBytes;
  if (declaredTooLarge && (stream === undefined || Number(declaredLength) > drain.bytes)) {
    // More than the drain would read: refused before a byte is read (the rest would be cut anyway).
    return Promise.reject(tooLarge(`the body is ${declaredLength} bytes; the limit is ${maxBytes}`));
  }
  if (stream === undefined) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Set once the body is known to be too large: from then on chunks are counted and dropped.
    let refusal: WriteguardError | null = null;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    const refuse = (message: string): void => {
      refusal = tooLarge(message);
      chunks.length = 0;
      timer = setTimeout(stopDraining, drain.ms);
    };
    // Past the drain bounds: answer now. Not destroyed: that would close the socket before the
    // 413 (with `connection: close`) leaves; paused, so nothing more is read.
    const stopDraining = (): void => {
      stream.off('data', onData).off('end', onEnd).pause();
      fail(refusal!);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (refusal === null) {
        if (size <= maxBytes) return void chunks.push(chunk);
        refuse(`the body is over the limit of ${maxBytes} bytes`);
      }
      if (size > drain.bytes) stopDraining();
    };
    const onEnd = (): void => {
      if (refusal !== null) return fail(refusal);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    // An agent that leaves mid-body: 'error' normally, 'close' without 'end' in any case.
    const onError = (err: Error): void => fail(refusal ?? err);
    const onClose = (): void => {
      if (!stream.readableEnded) fail(refusal ?? Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    };
    if (declaredTooLarge) refuse(`the body is ${declaredLength} bytes; the limit is ${maxBytes}`);
    stream.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose);
  });
}
