// Where the Redis store keeps things. Every key of one agent shares the `{scope}` hash tag, so one
// script may touch them all (and a Cluster keeps them on one slot):
//   record       `${prefix}{${scope}}:${upstream}:${keyHash}`         a hash of string fields (scripts.ts)
//   response     `${record}:resp`                                      status and headers as a JSON line, then the body's raw bytes (codec.ts)
//   dlq          `${prefix}{${scope}}:dlq`                             zset, member `${upstream}:${keyHash}`, score updatedAt
//   pointer      `${record of the derived key}:latest`                 the latest deliberate operation's key
//   intent index `${prefix}{${scope}}:intent:${upstream}:${hash}`      hash: m (the holder's dlq member), k (its upstream key),
//                                                                       c (created), s (state), st (status), meta; expires with the window
//   budget       `${prefix}{${scope}}:budget:${bucket}`                hash: used (spent + held), held; expires when its period ends
//   approvals    `${prefix}{${scope}}:approvals`                        zset of pending approvals, member as the dlq's, score created
//   breaker      `${prefix}{${scope}}:refusals:${upstream}`             refusals in the window; `…:paused:${upstream}` until when (ms)
import type { BeginInput, Leash, RecordKey } from '../store.js';
import { sentinelKey } from './sentinel.js';
import { slotSentinelKey } from './slot-sentinels.js';

export interface KeySet {
  /** `${prefix}{${scope}}`: every key of the agent starts with it. */
  tag: string;
  upstream: string;
  record: string;
  resp: string;
  dlq: string;
  member: string;
  /** The sentinel the begin script checks: the store's one, or on a Cluster the record's slot's. */
  sentinel: string;
}

export function recordKeys(keyPrefix: string, key: RecordKey, cluster: boolean): KeySet {
  const tag = `${keyPrefix}{${key.scope}}`;
  const record = `${tag}:${key.upstream}:${key.keyHash}`;
  const sentinel = cluster ? slotSentinelKey(keyPrefix, key.scope) : sentinelKey(keyPrefix);
  return {
    tag,
    upstream: key.upstream,
    record,
    resp: `${record}:resp`,
    dlq: `${tag}:dlq`,
    member: `${key.upstream}:${key.keyHash}`,
    sentinel,
  };
}

function intentKey(keys: KeySet, hash: string): string {
  return `${keys.tag}:intent:${keys.upstream}:${hash}`;
}

/** The pointer from a derived key to its latest deliberate operation (`Idempotency-Intent: new`). */
export function pointerKey(keys: KeySet, fromKeyHash: string): string {
  return `${keys.tag}:${keys.upstream}:${fromKeyHash}:latest`;
}

/** The agent's pending approvals: zset, member `${upstream}:${keyHash}`, score created. */
export function approvalsKey(keys: KeySet): string {
  return `${keys.tag}:approvals`;
}

/** The breaker's keys of an agent on an upstream: its refusal count in the window, and its pause (until, ms). */
export function breakerKeys(keys: KeySet): { refusals: string; paused: string } {
  return { refusals: `${keys.tag}:refusals:${keys.upstream}`, paused: `${keys.tag}:paused:${keys.upstream}` };
}

export function budgetKey(keys: KeySet, bucket: string): string {
  return `${keys.tag}:budget:${bucket}`;
}

/** The keys a settling step names after the record's three: its intent index, then its holds' counters. */
export function leashKeys(keys: KeySet, leash: Leash): string[] {
  return [...(leash.intent === null ? [] : [intentKey(keys, leash.intent)]), ...leash.holds.map((hold) => budgetKey(keys, hold.bucket))];
}

/** The number of keys, the keys, then ARGV[1] (the dlq member): what every script but get is called with. */
export function scriptArgs(keys: readonly string[], member: string): [number, ...string[]] {
  return [keys.length, ...keys, member];
}

/** What the begin script touches: the record's keys and sentinel, then the intent, pointer, approvals and budgets it names. */
export function beginKeys(keys: KeySet, input: BeginInput): string[] {
  return [
    keys.record,
    keys.resp,
    keys.dlq,
    keys.sentinel,
    ...(input.intent === null ? [] : [intentKey(keys, input.intent.hash)]),
    ...(input.pointer === null ? [] : [pointerKey(keys, input.pointer.from)]),
    ...(input.approval === null ? [] : [approvalsKey(keys)]),
    ...input.charges.map((charge) => budgetKey(keys, charge.bucket)),
  ];
}
