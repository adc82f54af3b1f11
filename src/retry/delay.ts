// How long to wait before the next attempt: the server's word first, else capped exponential
// backoff with full jitter. Pure: the clock and the random source are arguments.
import type { HeaderMap } from '../http/headers.js';
import { firstHeader } from '../http/headers.js';
import { parseDictionary, parseList } from 'structured-headers';
import { parseHttpDate } from './http-date.js';

const EPOCH_MS_FLOOR = 1e12; // values this large are epoch milliseconds (year 2001 onwards)
const EPOCH_S_FLOOR = 1e9; // …this large, epoch seconds; smaller, a delta in seconds
/** Jitter on a server-given delay goes upward only: never sooner than asked. */
const SERVER_JITTER = 0.2;

function nonNegative(text: string | undefined): number | null {
  if (text === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(text)) return null;
  const value = Number(text);
  return Number.isFinite(value) ? value : null;
}

/**
 * The seconds `RateLimit` asks to wait: a structured-field List of policies (RFC 9651),
 * `"burst";r=5;t=1, "daily";r=0;t=3600` — the longest reset of the exhausted ones (r=0), else of
 * all; or the older dictionary `limit=10, remaining=0, reset=30`. Parsed by the spec's grammar, so a
 * quoted name holding `t=5` is a name, not a reset.
 */
function rateLimitReset(value: string | undefined): number | null {
  if (value === undefined) return null;
  try {
    const policies = parseList(value).map(([, params]) => ({ r: params.get('r'), t: params.get('t') }));
    const resets = (list: typeof policies) => list.flatMap((p) => (typeof p.t === 'number' && p.t >= 0 ? [p.t] : []));
    const exhausted = resets(policies.filter((p) => p.r === 0));
    const any = exhausted.length > 0 ? exhausted : resets(policies);
    if (any.length > 0) return Math.max(...any);
  } catch {
    // not a List: the older dictionary form, below
  }
  try {
    const reset = parseDictionary(value).get('reset')?.[0];
    return typeof reset === 'number' && reset >= 0 ? reset : null;
  } catch {
    return null;
  }
}

/** Epoch seconds, epoch milliseconds or a delta in seconds, told apart by magnitude; as a delay in ms. */
function resetToDelayMs(value: number, nowMs: number): number {
  if (value >= EPOCH_MS_FLOOR) return value - nowMs;
  if (value >= EPOCH_S_FLOOR) return value * 1000 - nowMs;
  return value * 1000;
}

/**
 * The delay the server asked for, in ms, or null if it named none (or only garbage).
 * Order: retry-after-ms, Retry-After (seconds or HTTP-date), RateLimit / RateLimit-Reset (delta),
 * X-RateLimit-Reset (epoch s, epoch ms or delta).
 */
export function serverDelayMs(headers: HeaderMap, nowMs: number): number | null {
  const ms = nonNegative(firstHeader(headers['retry-after-ms']));
  if (ms !== null) return ms;
  const retryAfter = firstHeader(headers['retry-after']);
  const seconds = nonNegative(retryAfter);
  if (seconds !== null) return seconds * 1000;
  if (retryAfter !== undefined) {
    const at = parseHttpDate(retryAfter, nowMs); // strict RFC 9110 forms, UTC; not Date.parse
    if (at !== null) return Math.max(0, at - nowMs);
  }
  const reset = rateLimitReset(firstHeader(headers.ratelimit)) ?? nonNegative(firstHeader(headers['ratelimit-reset']));
  if (reset !== null) return reset * 1000;
  const xReset = nonNegative(firstHeader(headers['x-ratelimit-reset']));
  if (xReset !== null) return Math.max(0, resetToDelayMs(xReset, nowMs));
  return null;
}

export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface ChosenDelay {
  delayMs: number;
  source: 'server' | 'backoff';
  /** What the server asked for, before jitter (for a Retry-After passed back). */
  askedMs: number | null;
}

/**
 * The wait before attempt `retry + 1` (retry ≥ 1). A server delay is jittered to [d, 1.2d] and is
 * not capped (waiting less than asked is pointless; the elapsed budget decides whether to wait at all).
 */
export function chooseDelay(
  retry: number,
  headers: HeaderMap | null,
  policy: BackoffPolicy,
  nowMs: number,
  random: () => number = Math.random,
): ChosenDelay {
  const asked = headers === null ? null : serverDelayMs(headers, nowMs);
  if (asked !== null) return { delayMs: Math.ceil(asked * (1 + SERVER_JITTER * random())), source: 'server', askedMs: asked };
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(retry - 1, 30));
  return { delayMs: Math.floor(ceiling * random()), source: 'backoff', askedMs: null };
}

/** A Retry-After value (whole seconds, rounded up) for a wait of `ms`. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(0, Math.ceil(ms / 1000)));
}
