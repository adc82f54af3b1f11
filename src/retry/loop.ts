// writeguard's retry loop: the one place that sleeps, bounded by attempts, elapsed time and the
// upstream's retry budget, abortable so a shutdown never waits on a sleeping request.
import { setTimeout as delay } from 'node:timers/promises';
import type { RetryConfig } from '../config/schema.js';
import type { HeaderMap } from '../http/headers.js';
import type { RetryBudget } from './budget.js';
import { chooseDelay } from './delay.js';

export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, signal === undefined ? undefined : { signal });
}

export interface LoopOptions<T> {
  policy: RetryConfig;
  budget: RetryBudget;
  /** When the request arrived: `maxElapsedMs` counts from here. */
  startedAt: number;
  attempt: (n: number) => Promise<T>;
  /** Whether this result may be retried at all (the caller's classification). */
  retryable: (result: T) => boolean;
  /** The answer's headers, for the server's own delay; null when there was no answer. */
  headersOf: (result: T) => HeaderMap | null;
  /** Checked before and after each wait: e.g. the agent left, or the write's lease was lost. */
  mayContinue?: () => boolean;
  /** The last step before a retry is sent (a write's fenced markSent); false stops the loop. */
  beforeRetry?: () => Promise<boolean>;
  onRetry?: (n: number, delayMs: number, result: T) => void;
  signal?: AbortSignal;
  now?: () => number;
  random?: () => number;
}

export type StopReason = 'final' | 'max_attempts' | 'elapsed' | 'budget' | 'halted';

export interface LoopResult<T> {
  result: T;
  attempts: number;
  stopped: StopReason;
  /** When stopped because the next wait would cross maxElapsedMs: how long the server asked to wait. */
  retryAfterMs: number | null;
}

export async function retryLoop<T>(o: LoopOptions<T>): Promise<LoopResult<T>> {
  const now = o.now ?? Date.now;
  o.budget.recordRequest();
  let n = 1;
  let result = await o.attempt(n);
  for (;;) {
    if (!o.retryable(result)) return { result, attempts: n, stopped: 'final', retryAfterMs: null };
    const chosen = chooseDelay(n, o.headersOf(result), o.policy, now(), o.random);
    const stop = (stopped: StopReason): LoopResult<T> => ({ result, attempts: n, stopped, retryAfterMs: chosen.askedMs ?? chosen.delayMs });
    if (n >= o.policy.maxAttempts) return stop('max_attempts');
    // A wait that would start the next attempt past the elapsed budget is not slept: answer now.
    if (now() + chosen.delayMs - o.startedAt > o.policy.maxElapsedMs) return stop('elapsed');
    if (o.mayContinue?.() === false) return stop('halted');
    if (!o.budget.tryRetry()) return stop('budget');
    o.onRetry?.(n, chosen.delayMs, result);
    try {
      await sleep(chosen.delayMs, o.signal);
    } catch {
      return stop('halted');
    }
    if (o.mayContinue?.() === false) return stop('halted');
    if (o.beforeRetry !== undefined && !(await o.beforeRetry())) return stop('halted');
    n++;
    result = await o.attempt(n);
  }
}
