// Budget holds and the intent index under random interleavings (DESIGN §10.2), on the memory store
// (decide.ts + decide-leash.ts over a fake clock): begin / markSent / finish / resolve / lease
// expiry in any order, by several writers on a few keys, never double-count or leak a hold.
// After every step the counter must equal what the records say: held = the holds of records in
// flight or unknown; spent = the holds of records completed with a status that spends.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { MemoryStore } from '../../../src/store/memory.js';
import type { BeginInput, Fence, FinishOutcome, IdemRecord, RecordKey } from '../../../src/store/store.js';

const LEASE_MS = 100;
const KEYS = 3;
const LIMIT = 25;
const BUCKET = 'b:total';
const SCOPE = 'live:agent';
const meta = { method: 'POST', path: '/v1/payments', keySource: 'client' as const };

type Op =
  | { t: 'begin'; key: number; amount: number; intent: boolean }
  | { t: 'markSent'; key: number }
  | { t: 'finish'; key: number; kind: 'complete' | 'release' | 'unknown'; status: number }
  | { t: 'resolve'; key: number; executed: boolean; status: number }
  | { t: 'advance'; ms: number };

const key = fc.integer({ min: 0, max: KEYS - 1 });
const status = fc.constantFrom(200, 201, 302, 400, 402, 409, 500, 503);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({ t: fc.constant('begin' as const), key, amount: fc.integer({ min: 0, max: 12 }), intent: fc.boolean() }),
    weight: 4,
  },
  { arbitrary: fc.record({ t: fc.constant('markSent' as const), key }), weight: 3 },
  {
    arbitrary: fc.record({
      t: fc.constant('finish' as const),
      key,
      kind: fc.constantFrom('complete' as const, 'release' as const, 'unknown' as const),
      status,
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ t: fc.constant('resolve' as const), key, executed: fc.boolean(), status }), weight: 1 },
  { arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 2.5 * LEASE_MS }) }), weight: 2 },
);

const spends = (record: IdemRecord): boolean => record.state === 'completed' && !(record.status! >= 400 && record.status! < 500);
const sum = (records: IdemRecord[]): number => records.reduce((n, r) => n + r.leash.holds.reduce((m, h) => m + h.amount, 0), 0);

async function run(ops: Op[]): Promise<void> {
  let now = 1_000_000;
  const store = new MemoryStore(() => now);
  const keys: RecordKey[] = Array.from({ length: KEYS }, (_, i) => ({ scope: SCOPE, upstream: 'pay', keyHash: `k${i}` }));
  /** The last fence each key's writer holds (a newer writer replaces it; an old one may still act, and must be refused). */
  const fences = new Map<number, Fence>();
  /** Every record ever completed with a spending status, by key and epoch: spent once, never again. */
  const spent = new Map<string, IdemRecord>();
  try {
    for (const step of ops) {
      if (step.t === 'advance') now += step.ms;
      else if (step.t === 'begin') {
        const input: BeginInput = {
          key: keys[step.key]!,
          fingerprint: 'fp',
          upstreamKey: `u${step.key}`,
          owner: randomUUID(),
          leaseMs: LEASE_MS,
          mode: 'join',
          reclaimUnknown: false,
          meta,
          intent: step.intent ? { hash: 'same-intent', windowMs: 10 * LEASE_MS, mode: 'guard' } : null,
          charges: [{ bucket: BUCKET, amount: step.amount, limit: LIMIT, resetAt: null }],
          pointer: null,
          approval: null,
        };
        const result = await store.begin(input);
        if (result.outcome === 'acquired')
          fences.set(step.key, { key: input.key, owner: result.record.owner, epoch: result.record.epoch, leash: result.record.leash });
      } else {
        const fence = fences.get(step.key);
        if (step.t === 'markSent' && fence !== undefined) await store.markSent(fence, LEASE_MS);
        if (step.t === 'finish' && fence !== undefined) {
          const outcome: FinishOutcome =
            step.kind === 'complete'
              ? { kind: 'complete', status: step.status, requestId: null, response: null, ttlSec: 3600, tombstoneSec: 3600 }
              : step.kind === 'release'
                ? { kind: 'release' }
                : { kind: 'unknown', status: null, requestId: null, reason: 'timeout' };
          await store.finish(fence, outcome);
        }
        if (step.t === 'resolve') {
          const record = await store.get(keys[step.key]!);
          if (record !== null)
            await store.resolve(
              keys[step.key]!,
              record,
              step.executed
                ? { kind: 'executed', status: step.status, response: null, ttlSec: 3600, tombstoneSec: 3600 }
                : { kind: 'not_executed' },
            );
        }
      }
      const byKey = await Promise.all(keys.map((k) => store.get(k)));
      byKey.forEach((r, i) => {
        if (r !== null && spends(r)) spent.set(`${i}:${r.createdAt}`, r);
      });
      const records = byKey.filter((r): r is IdemRecord => r !== null);
      const [counter] = await store.budgetCounters({ scope: SCOPE, scopePrefix: 'live:', buckets: [BUCKET] });
      const held = sum(records.filter((r) => r.state !== 'completed'));
      const used = held + sum([...spent.values()]);
      assert.deepEqual(counter === undefined ? [0, 0] : [counter.used, counter.held], [used, held]);
      assert.ok(used <= LIMIT, `used ${used} over the limit ${LIMIT}`);
    }
  } finally {
    await store.close();
  }
}

test('holds under random interleavings: the counter is always what the records hold and spent, never over the limit', async () => {
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 50 }), run), { numRuns: 1500 });
});
