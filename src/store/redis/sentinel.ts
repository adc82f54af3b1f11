// Store amnesia (DESIGN §3.12): the rules for the sentinel key, pure. An instance remembers the
// sentinel value it saw; a missing or changed sentinel means the store lost claims, and writes
// fail closed until an operator acknowledges (`writeguard store ack`).
import type { NotReady } from '../store.js';

export function sentinelKey(keyPrefix: string): string {
  return `${keyPrefix}sentinel`;
}

export function sentinelAckKey(keyPrefix: string): string {
  return `${keyPrefix}sentinel:ack`;
}

export type NotReadyReason =
  /** No sentinel, and the store holds writeguard keys (or initOnEmpty is off): `writeguard store init`. */
  | 'store_not_initialised'
  /** The sentinel this instance saw is gone: the store lost its data. */
  | 'sentinel_missing'
  /** Another sentinel value that no operator acknowledged. */
  | 'sentinel_changed';

export interface SentinelFacts {
  /** The value this instance saw last; null before it saw any. */
  remembered: string | null;
  /** The sentinel in the store now. */
  value: string | null;
  /** The ack key, once read (undefined: not read yet). */
  ack?: string | null;
  /** Whether the store holds no key under the prefix, once looked (undefined: not looked yet). */
  empty?: boolean;
  initOnEmpty: boolean;
}

export type SentinelVerdict =
  | { kind: 'ready'; adopt: string }
  /** Create the sentinel (SET NX a random value), then adopt whatever value the store holds. */
  | { kind: 'init' }
  | { kind: 'not_ready'; reason: NotReadyReason }
  /** Read this fact, then judge again. */
  | { kind: 'need'; fact: 'ack' | 'empty' };

export function judgeSentinel(facts: SentinelFacts): SentinelVerdict {
  const { remembered, value } = facts;
  if (remembered === null) {
    // '': a Cluster whose masters hold different sentinels — nothing to adopt until an ack.
    if (value === '') return { kind: 'not_ready', reason: 'sentinel_changed' };
    if (value !== null) return { kind: 'ready', adopt: value };
    if (!facts.initOnEmpty) return { kind: 'not_ready', reason: 'store_not_initialised' };
    if (facts.empty === undefined) return { kind: 'need', fact: 'empty' };
    return facts.empty ? { kind: 'init' } : { kind: 'not_ready', reason: 'store_not_initialised' };
  }
  if (value === remembered) return { kind: 'ready', adopt: value };
  if (value === null) return { kind: 'not_ready', reason: 'sentinel_missing' };
  if (facts.ack === undefined) return { kind: 'need', fact: 'ack' };
  return facts.ack === value ? { kind: 'ready', adopt: value } : { kind: 'not_ready', reason: 'sentinel_changed' };
}

export const NOT_READY: Record<NotReadyReason, NotReady> = {
  store_not_initialised: {
    code: 'not_initialised',
    detail: 'the store holds no sentinel: run `writeguard store init` once (an emptied store is never adopted silently)',
  },
  sentinel_missing: {
    code: 'sentinel_missing',
    detail: 'the store sentinel is gone (the store lost its data): check, then run `writeguard store ack`',
  },
  sentinel_changed: { code: 'sentinel_changed', detail: 'the store sentinel changed: check, then run `writeguard store ack`' },
};
