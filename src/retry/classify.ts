// What an upstream's answer to a write proves about whether it ran. Pure.
import type { IdempotencyConfig } from '../config/schema.js';

/**
 * definitive: the write ran (or was refused for good) and the answer says so;
 * not_executed: the answer proves nothing ran (429 by default; 401: the request was not
 *   authenticated, so nothing ran), so the key is free again;
 * ambiguous: it may have run (408, 425, 5xx — a load balancer answers 503 after the backend ran).
 */
export type WriteVerdict = 'definitive' | 'not_executed' | 'ambiguous';

export function classifyWriteStatus(
  status: number,
  idempotency: Pick<IdempotencyConfig, 'notExecutedStatuses' | 'upstreamHonorsKey'>,
): WriteVerdict {
  if (status === 401 || idempotency.notExecutedStatuses.includes(status)) return 'not_executed';
  if (status >= 500 || status === 408 || status === 425 || status === 429) return 'ambiguous';
  // An upstream that dedupes on the key answers 409 while its own copy is still running.
  if (status === 409 && idempotency.upstreamHonorsKey) return 'ambiguous';
  return 'definitive';
}
