// Approvals (DESIGN §10.4), pure: whether a write is above a threshold a person must approve. The
// record that waits, its holds and the decision live in the store.
import type { ApprovalRule } from '../config/schema.js';
import { matchesWrite } from '../config/route-pattern.js';
import { writeAmount } from './amount.js';

/**
 * The approval a write needs, or null: the first rule matching it whose threshold its amount is
 * strictly above. A matching rule whose amount field is missing or malformed refuses the write
 * (400 amount_invalid): a threshold that cannot be read is not passed.
 */
export function approvalNeeded(
  rules: readonly ApprovalRule[],
  write: { method: string; apiPath: string; tool: string | null },
  json: () => unknown,
): { amount: number; ttlMs: number } | null {
  const path = write.apiPath.split('?')[0]!;
  for (const rule of rules) {
    if (!rule.match.some((pattern) => matchesWrite(pattern, write.method, write.apiPath, write.tool))) continue;
    const amount = writeAmount(json(), rule.amount, rule.scale, { method: write.method, path }, 'the approval rule');
    if (amount > rule.above) return { amount, ttlMs: rule.ttlSec * 1000 };
  }
  return null;
}
