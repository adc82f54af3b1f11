// Buffers a write's body, bounded, so the exact bytes can be fingerprinted and re-sent unchanged.
import type { Readable } from 'node:stream';
import { WriteguardError } from '../errors.js';

export async function readBody(stream: Readable | undefined, declaredLength: string | undefined, maxBytes: number): Promise<Buffer> {
  if (declaredLength !== undefined && Number(declaredLength) > maxBytes) {
    throw new WriteguardError('body_too_large', `the body is ${declaredLength} bytes; the limit is ${maxBytes}`, { headers: { connection: 'close' } });
  }
  if (stream === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      throw new WriteguardError('body_too_large', `the body is over the limit of ${maxBytes} bytes`, { headers: { connection: 'close' } });
    }
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
}
