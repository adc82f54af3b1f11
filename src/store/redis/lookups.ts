// An operator's look-ups on the Redis store, across every agent: records by key hash, dead letters,
// budget counters. They scan every master (bounded, see client.ts scanOnce); the caller bounds
// their time and maps failures.
import type { BudgetCounter, DeadLetter, IdemRecord, RecordKey } from '../store.js';
import { masters, scanOnce, type Client } from './client.js';
import { parseRecord } from './codec.js';
import { budgetKey, type KeySet } from './keys.js';
import type { ScriptRunner } from './scripts.js';

export interface Lookups {
  client: Client;
  keyPrefix: string;
  scripts: ScriptRunner;
  keys: (key: RecordKey) => KeySet;
}

/** `${prefix}{scope}…` → scope: a scope never holds '}'. */
function scopeOf(prefix: string, key: string): { scope: string; rest: string } {
  const close = key.indexOf('}:', prefix.length);
  return { scope: key.slice(prefix.length + 1, close), rest: key.slice(close + 2) };
}

export async function findByKeyHash(ctx: Lookups, keyHash: string, limit: number): Promise<DeadLetter[]> {
  // Hex only: nothing in it can act as a SCAN glob.
  if (!/^[0-9a-f]{16,64}$/.test(keyHash) || limit <= 0) return [];
  const prefix = ctx.keyPrefix;
  const recordKeys: string[] = [];
  for (const node of masters(ctx.client)) {
    await scanOnce(node, `${prefix}{*}:*:${keyHash}`, 'hash', (keys) => {
      recordKeys.push(...keys);
      return recordKeys.length < limit;
    });
  }
  const found: DeadLetter[] = [];
  for (const recordKey of recordKeys.slice(0, limit)) {
    // `${prefix}{scope}:upstream:hash`: upstream names never hold ':'.
    const { scope, rest } = scopeOf(prefix, recordKey);
    const key = { scope, upstream: rest.slice(0, rest.length - keyHash.length - 1), keyHash };
    const reply = await ctx.scripts.wgGetBuffer(2, recordKey, `${recordKey}:resp`);
    if (Array.isArray(reply)) found.push({ key, record: parseRecord(reply[0], reply[1]) });
  }
  return found;
}

export function deadLetters(ctx: Lookups, limit: number): Promise<DeadLetter[]> {
  return indexed(ctx, 'dlq', limit, (record) => record.state === 'outcome_unknown');
}

export function approvals(ctx: Lookups, limit: number): Promise<DeadLetter[]> {
  return indexed(ctx, 'approvals', limit, (record) => record.state === 'awaiting_approval' && record.approval?.state === 'pending');
}

/** The records named by every agent's `{scope}:${index}` zset (members `${upstream}:${keyHash}`), oldest change first. */
async function indexed(ctx: Lookups, index: string, limit: number, wanted: (record: IdemRecord) => boolean): Promise<DeadLetter[]> {
  if (limit <= 0) return [];
  const prefix = ctx.keyPrefix;
  const suffix = `}:${index}`;
  const indexKeys = new Set<string>();
  for (const node of masters(ctx.client)) {
    await scanOnce(node, `${prefix}*:${index}`, 'zset', (keys) => {
      for (const k of keys) if (k.startsWith(`${prefix}{`) && k.endsWith(suffix)) indexKeys.add(k);
      return true;
    });
  }
  const candidates: { key: RecordKey; score: number }[] = [];
  for (const indexKey of indexKeys) {
    const scope = indexKey.slice(prefix.length + 1, indexKey.length - suffix.length);
    const flat = await ctx.client.zrange(indexKey, 0, limit - 1, 'WITHSCORES');
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const member = flat[i]!;
      const colon = member.indexOf(':');
      if (colon <= 0) continue;
      candidates.push({ key: { scope, upstream: member.slice(0, colon), keyHash: member.slice(colon + 1) }, score: Number(flat[i + 1]) });
    }
  }
  candidates.sort((a, b) => a.score - b.score);
  const found: DeadLetter[] = [];
  for (const { key } of candidates.slice(0, limit)) {
    const keys = ctx.keys(key);
    const reply = await ctx.scripts.wgGetBuffer(2, keys.record, keys.resp);
    if (!Array.isArray(reply)) continue;
    const record = parseRecord(reply[0], reply[1]);
    if (wanted(record)) found.push({ key, record });
  }
  return found.sort((a, b) => a.record.updatedAt - b.record.updatedAt);
}

/** One scope's counters by key; every scope's under `scopePrefix` by a scan of each master. */
export async function budgetCounters(
  ctx: Lookups,
  query: { scope: string | null; scopePrefix: string; buckets: readonly string[] },
): Promise<BudgetCounter[]> {
  const prefix = ctx.keyPrefix;
  const wanted = new Set(query.buckets);
  const found: { scope: string; bucket: string; key: string }[] = [];
  if (query.scope !== null) {
    const keys = ctx.keys({ scope: query.scope, upstream: '', keyHash: '' });
    for (const bucket of wanted) found.push({ scope: query.scope, bucket, key: budgetKey(keys, bucket) });
  } else {
    // Budget and scope names are [a-z0-9_-] and ':' (config): nothing in the pattern acts as a glob but the '*'s.
    for (const node of masters(ctx.client)) {
      await scanOnce(node, `${prefix}{${query.scopePrefix}*}:budget:*`, 'hash', (keys) => {
        for (const key of keys) {
          const { scope, rest } = scopeOf(prefix, key);
          const bucket = rest.slice('budget:'.length);
          if (wanted.has(bucket)) found.push({ scope, bucket, key });
        }
        return true;
      });
    }
  }
  const counters: BudgetCounter[] = [];
  for (const { scope, bucket, key } of found) {
    const [used, held] = await ctx.client.hmget(key, 'used', 'held');
    if (used === null) continue;
    counters.push({ scope, bucket, used: Number(used), held: Number(held ?? 0) });
  }
  return counters;
}
