// An upstream answer as the store keeps it for replay, and back. Pure.
import type { IdempotencyConfig } from '../config/schema.js';
import type { Answer } from '../http/attempt.js';
import type { StoredResponse } from '../store/store.js';

// Whatever the allow-list says, a replay carries what is needed to read its body (fastify sets
// content-length from the stored bytes): gzip bytes without their content-encoding look like a
// failed payment to the agent, which may then pay again.
const BODY_HEADERS = ['content-type', 'content-encoding'];

/** Null when the body is over `maxStoredResponseBytes`: the record keeps status and request id only. */
export function toStored(
  answer: Answer,
  idem: Pick<IdempotencyConfig, 'maxStoredResponseBytes' | 'replayHeaders'>,
  requestIdHeaders: readonly string[],
): StoredResponse | null {
  if (answer.body.length > idem.maxStoredResponseBytes) return null;
  const keep = new Set([...BODY_HEADERS, ...idem.replayHeaders, ...requestIdHeaders]);
  const headers: Record<string, string | string[]> = {};
  for (const name of keep) {
    const value = answer.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  // A copy of its own: the answer's bytes may be a slice of a pooled 8 KiB slab, which a kept record
  // (memory store, replay cache) would hold whole.
  const body = Buffer.allocUnsafeSlow(answer.body.length);
  answer.body.copy(body);
  return { status: answer.status, headers, body };
}

/**
 * How long a completed record replays, then stays as a tombstone. A derived key only joins SDK
 * retries within its window and leaves no tombstone (tomorrow's identical payment is a new one).
 */
export function retentionOf(
  derived: boolean,
  idem: Pick<IdempotencyConfig, 'deriveWindowSec' | 'ttlSec' | 'tombstoneSec'>,
): { ttlSec: number; tombstoneSec: number } {
  return derived ? { ttlSec: idem.deriveWindowSec, tombstoneSec: 0 } : { ttlSec: idem.ttlSec, tombstoneSec: idem.tombstoneSec };
}
