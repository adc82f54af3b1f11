// Approvals (DESIGN §10.4) as operators see and decide them: the pending writes above a threshold,
// and approve / deny — compare-and-sets on the record. Shared by the admin routes and the CLI.
import { parseRecordId, recordId } from '../store/record-id.js';
import type { DeadLetter, StepResult, Store } from '../store/store.js';

export interface ApprovalView {
  id: string;
  state: string;
  agent: string;
  upstream: string;
  method: string;
  path: string;
  /** In minor units. */
  amount: number;
  /** The key the upstream will receive (the client's own when it sent one). */
  idempotency_key: string;
  epoch: number;
  created_at: string;
  expires_at: string;
}

function approvalView({ key, record }: DeadLetter, namespace: string): ApprovalView {
  const approval = record.approval!;
  return {
    id: recordId(key),
    state: approval.state,
    agent: key.scope.startsWith(`${namespace}:`) ? key.scope.slice(namespace.length + 1) : key.scope,
    upstream: key.upstream,
    method: record.meta.method,
    path: record.meta.path,
    amount: approval.amount,
    idempotency_key: record.upstreamKey,
    epoch: record.epoch,
    created_at: new Date(record.createdAt).toISOString(),
    expires_at: new Date(approval.expiresAt).toISOString(),
  };
}

/** The pending approvals; those past their time are expired first (their holds released), so none is listed stale. */
export async function listApprovals(store: Store, namespace: string, limit: number): Promise<ApprovalView[]> {
  await expireDueApprovals(store, Date.now(), limit);
  return (await store.approvals(limit)).map((a) => approvalView(a, namespace));
}

/** `not_found`: no such pending approval; `stale`: it was decided (or expired) since it was read. */
export async function decideApproval(store: Store, id: string, verdict: 'approve' | 'deny'): Promise<StepResult | 'not_found'> {
  const key = parseRecordId(id);
  if (key === null) return 'not_found';
  const record = await store.get(key);
  if (record?.approval === null || record?.approval === undefined) return 'not_found';
  return store.decideApproval(key, record, verdict);
}

/**
 * Expires the pending approvals past their time, releasing their holds: nobody has to ask about
 * an approval again for its budget to come back. Safe on every instance at once (compare-and-set).
 */
export async function expireDueApprovals(store: Store, nowMs: number, limit: number): Promise<number> {
  let expired = 0;
  for (const { key, record } of await store.approvals(limit)) {
    if (record.approval !== null && nowMs >= record.approval.expiresAt && (await store.decideApproval(key, record, 'expire')) === 'ok')
      expired++;
  }
  return expired;
}
