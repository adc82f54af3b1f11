// An opaque, URL-safe id naming one record (its scope, upstream and key hash): how operators name a
// dead letter or an approval, and how the agent is told which approval it waits for.
import type { RecordKey } from './store.js';

export function recordId(key: RecordKey): string {
  return Buffer.from(`${key.scope}\n${key.upstream}\n${key.keyHash}`).toString('base64url');
}

export function parseRecordId(id: string): RecordKey | null {
  const parts = Buffer.from(id, 'base64url').toString('utf8').split('\n');
  if (parts.length !== 3 || !/^[0-9a-f]{64}$/.test(parts[2]!)) return null;
  return { scope: parts[0]!, upstream: parts[1]!, keyHash: parts[2]! };
}
