// Buffers a write's body, bounded, so the exact bytes can be fingerprinted and re-sent unchanged.
import type { Readable } from 'node:stream';
import { WriteguardError } from '../errors.js';

const tooLarge = (message: string): WriteguardError => new WriteguardError('body_too_large', message, { headers: { connection: 'close' } });

// Stream events rather than `for await`: the async iterator costs a promise per chunk and its own
// end-of-stream tracking, a visible share of a replay's CPU in profiles.
export function readBody(stream: Readable | undefined, declaredLength: string | undefined, maxBytes: number): Promise<Buffer> {
  if (declaredLength !== undefined && Number(declaredLength) > maxBytes) {
    return Promise.reject(tooLarge(`the body is ${declaredLength} bytes; the limit is ${maxBytes}`));
  }
  if (stream === undefined) return Promise.resolve(Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        // Not destroyed: that would close the socket before the 413 (with `connection: close`) leaves.
        stream.off('data', onData).off('end', onEnd).pause();
        return reject(tooLarge(`the body is over the limit of ${maxBytes} bytes`));
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    // An agent that leaves mid-body: 'error' normally, 'close' without 'end' in any case.
    const onClose = (): void => {
      if (!stream.readableEnded) reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
    };
    stream.on('data', onData).once('end', onEnd).once('error', reject).once('close', onClose);
  });
}
