// Past-due approvals are expired by the sweep (DESIGN §10.4): their budget holds come back without
// the agent asking again; one still within its time is left pending.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { expireDueApprovals } from '../../src/admin/approvals.js';
import { MemoryStore } from '../../src/store/memory.js';
import { input } from '../helpers/store-contract.js';

test('the sweep expires past-due approvals and releases their holds; a pending one in time stays', async () => {
  const store = new MemoryStore();
  try {
    const scope = 'live:agent';
    const charge = (amount: number) => ({ bucket: 'daily:d1', amount, limit: 1000, resetAt: Date.now() + 3_600_000 });
    const due = { scope, upstream: 'pay', keyHash: 'a'.repeat(64) };
    const later = { scope, upstream: 'pay', keyHash: 'b'.repeat(64) };
    assert.equal(
      (await store.begin(input(due, { approval: { amount: 300, ttlMs: 100 }, charges: [charge(300)] }))).outcome,
      'approval_required',
    );
    assert.equal(
      (await store.begin(input(later, { approval: { amount: 200, ttlMs: 60_000 }, charges: [charge(200)] }))).outcome,
      'approval_required',
    );
    const held = async () => (await store.budgetCounters({ scope, scopePrefix: 'live:', buckets: ['daily:d1'] }))[0]?.held;
    assert.equal(await held(), 500);
    assert.equal(await expireDueApprovals(store, Date.now(), 100), 0, 'nothing is due yet');
    await sleep(150);
    assert.equal(await expireDueApprovals(store, Date.now(), 100), 1);
    assert.equal(await held(), 200, 'the expired one gave its hold back');
    assert.deepEqual(
      (await store.approvals(10)).map((a) => a.key.keyHash),
      [later.keyHash],
    );
    assert.equal((await store.begin(input(due))).outcome, 'approval_expired');
  } finally {
    await store.close();
  }
});
