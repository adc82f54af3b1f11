// Key inspection: a key's records, as operators see them (state, fingerprint, attempts, status, lease).
import { keyHash } from '../idempotency/key.js';
import type { DeadLetter, Store } from '../store/store.js';
import { recordView, type RecordView } from './dead-letters.js';

export interface KeyRecordView extends RecordView {
  fingerprint: string;
  lease_until: string | null;
}

const ALL_SCOPES_LIMIT = 100;

export interface KeyQuery {
  /** One agent's scope (`namespace:agent`); absent: every scope (the store is scanned). */
  scope?: string;
  /** Only these upstreams (with a scope, the ones to look in); absent: any. */
  upstreams?: readonly string[];
}

export async function keyRecords(store: Store, key: string, query: KeyQuery): Promise<KeyRecordView[]> {
  const hash = keyHash(key);
  let found: DeadLetter[];
  const { scope, upstreams } = query;
  if (scope !== undefined && upstreams !== undefined) {
    const records = await Promise.all(
      upstreams.map(async (upstream) => ({
        key: { scope, upstream, keyHash: hash },
        record: await store.get({ scope, upstream, keyHash: hash }),
      })),
    );
    found = records.filter((r): r is DeadLetter => r.record !== null);
  } else {
    found = (await store.findByKeyHash(hash, ALL_SCOPES_LIMIT)).filter(
      (r) => (upstreams?.includes(r.key.upstream) ?? true) && (scope === undefined || r.key.scope === scope),
    );
  }
  return found.map(({ key: recordKey, record }) => ({
    ...recordView(recordKey, record),
    fingerprint: record.fingerprint,
    lease_until: record.leaseUntil === 0 ? null : new Date(record.leaseUntil).toISOString(),
  }));
}
