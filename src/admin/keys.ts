// Key inspection: a key's records, as operators see them (state, fingerprint, attempts, status, lease).
import { keyHash } from '../idempotency/key.js';
import type { Store } from '../store/store.js';
import { recordView, type RecordView } from './dead-letters.js';

export interface KeyRecordView extends RecordView {
  fingerprint: string;
  lease_until: string | null;
}

/** The key's record in each of the upstreams named, for one agent's scope. */
export async function keyRecords(store: Store, scope: string, upstreams: readonly string[], key: string): Promise<KeyRecordView[]> {
  const hash = keyHash(key);
  const found: KeyRecordView[] = [];
  for (const upstream of upstreams) {
    const recordKey = { scope, upstream, keyHash: hash };
    const record = await store.get(recordKey);
    if (record !== null) {
      found.push({ ...recordView(recordKey, record), fingerprint: record.fingerprint, lease_until: record.leaseUntil === 0 ? null : new Date(record.leaseUntil).toISOString() });
    }
  }
  return found;
}
