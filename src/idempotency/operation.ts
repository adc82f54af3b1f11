// Which operation a write is: its key, where the key came from, and whether an existing record is
// this operation (join) or a possible duplicate of it (fresh). Pure.
import { hash, randomUUID } from 'node:crypto';
import type { IdempotencyConfig } from '../config/schema.js';
import { WriteguardError } from '../errors.js';
import type { KeySource } from '../observe/exchange.js';
import type { FoundKey } from './key.js';

export interface Operation {
  key: string;
  source: KeySource;
  /** join: an existing record is this operation; fresh: an existing record is a possible duplicate. */
  mode: 'join' | 'fresh';
  /** `Idempotency-Intent: new` on a keyless write: `start` a new operation, or the SDK's `retry` of one. */
  intentNew?: 'start' | 'retry';
}

/** What the request says about itself, as sent. */
export interface Signals {
  /** `Idempotency-Intent`: `retry` or `new`. */
  intent: string | undefined;
  /** `X-Stainless-Retry-Count` ≥ 1: the SDK says this request is its own retry. */
  sdkRetry: boolean;
}

/**
 * The operation of a write: its client key, or (none sent) one made, refused or skipped by
 * `missing`. Null: forwarded unprotected (`missing: allow`). A derived key is the hash of the
 * fingerprint; the store may point it at a deliberate operation started later (see guard).
 */
export function chooseOperation(
  found: FoundKey | null,
  idem: Pick<IdempotencyConfig, 'missing' | 'header' | 'keyFrom'>,
  fingerprint: string,
  signals: Signals,
): Operation | null {
  if (found !== null) return { key: found.key, source: found.source, mode: 'join' };
  switch (idem.missing) {
    case 'reject':
      throw new WriteguardError(
        'idempotency_key_missing',
        `this write needs an ${idem.header} header${idem.keyFrom.length > 1 ? ` or one of ${idem.keyFrom.join(', ')}` : ''}`,
      );
    case 'allow':
      return null;
    case 'uuid':
      return { key: `wgu_${randomUUID()}`, source: 'uuid', mode: 'join' };
    case 'derive': {
      const derived = `wgd_${hash('sha256', fingerprint, 'base64url').slice(0, 32)}`;
      if (signals.intent === 'new')
        return { key: derived, source: 'derived', mode: 'join', intentNew: signals.sdkRetry ? 'retry' : 'start' };
      return { key: derived, source: 'derived', mode: signals.sdkRetry || signals.intent === 'retry' ? 'join' : 'fresh' };
    }
  }
}

/** The key of a new deliberate operation under a derived key. */
export function deliberateKey(derived: string): string {
  return `${derived}.${randomUUID()}`;
}
