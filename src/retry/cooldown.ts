// Cooldowns after a 429, per agent and upstream: a local cache that every instance sharing the store
// keeps current from announcements, so checking one costs no round trip.
import type { UpstreamConfig } from '../config/schema.js';
import { WriteguardError } from '../errors.js';
import type { HeaderMap } from '../http/headers.js';
import type { RetryBudget } from './budget.js';
import { retryAfterSeconds, serverDelayMs } from './delay.js';
import { sleep } from './loop.js';
/** Past this many entries, a new cooldown first drops the expired ones: agent ids come from a header. */
const SWEEP_ABOVE = 1024;

export class Cooldowns {
  private readonly until = new Map<string, number>();
  private sweepAt = SWEEP_ABOVE;

  constructor(private readonly clock: () => number = Date.now) {}

  private id(scope: string, upstream: string): string {
    return `${scope}\n${upstream}`;
  }

  /** Milliseconds this agent's upstream stays cooled down; 0 when it is not. */
  remainingMs(scope: string, upstream: string): number {
    if (this.until.size === 0) return 0;
    const id = this.id(scope, upstream);
    const until = this.until.get(id);
    if (until === undefined) return 0;
    const left = until - this.clock();
    if (left <= 0) this.until.delete(id);
    return Math.max(0, left);
  }

  /** Records a cooldown of `delayMs` from now (a longer one already noted stands). */
  note(scope: string, upstream: string, delayMs: number): void {
    if (this.until.size >= this.sweepAt) this.sweep();
    const id = this.id(scope, upstream);
    const until = this.clock() + delayMs;
    if ((this.until.get(id) ?? 0) < until) this.until.set(id, until);
  }

  /** Entries held: live cooldowns, and expired ones not yet dropped. */
  get size(): number {
    return this.until.size;
  }

  /** An expired entry goes when its agent is next checked, or here; the next sweep waits for the map to double, so notes stay O(1) on average. */
  private sweep(): void {
    const now = this.clock();
    for (const [id, until] of this.until) if (until <= now) this.until.delete(id);
    this.sweepAt = Math.max(SWEEP_ABOVE, 2 * this.until.size);
  }
}

/** What the request paths share for retries: budgets per upstream, the cooldown cache, its transport. */
export interface RetryKit {
  budgets: ReadonlyMap<string, RetryBudget>;
  cooldowns: Cooldowns;
  /** Tells the fleet (the store's pub/sub); the local cache is fed back through it too. */
  announce: (scope: string, upstream: string, delayMs: number) => void;
  /** Aborted at shutdown: a request waiting out a cooldown or a backoff answers at once. */
  signal: AbortSignal;
}

/**
 * Before anything is claimed or sent: an agent whose upstream is cooling down waits it out when the
 * wait fits its elapsed budget, and otherwise gets writeguard's own 429 without touching the upstream.
 */
export async function passCooldown(kit: RetryKit, scope: string, upstream: UpstreamConfig, startedAt: number): Promise<void> {
  const remaining = kit.cooldowns.remainingMs(scope, upstream.name);
  if (remaining === 0) return;
  if (Date.now() + remaining - startedAt <= upstream.retry.maxElapsedMs) {
    try {
      await sleep(remaining, kit.signal);
      return;
    } catch {
      // shutting down: refuse instead
    }
  }
  throw new WriteguardError(
    'rate_limited',
    `the upstream rate-limited this agent; it cools down for ${Math.ceil(remaining / 1000)} s more`,
    {
      headers: { 'retry-after': retryAfterSeconds(remaining) },
    },
  );
}

/** After a 429: the agent's upstream cools down until the reset it announced, capped. */
export function noteRateLimit(kit: RetryKit, scope: string, upstream: UpstreamConfig, headers: HeaderMap): void {
  const asked = serverDelayMs(headers, Date.now()) ?? upstream.retry.baseDelayMs;
  const delayMs = Math.min(asked, upstream.retry.maxCooldownSec * 1000);
  if (delayMs <= 0) return;
  kit.cooldowns.note(scope, upstream.name, delayMs);
  kit.announce(scope, upstream.name, delayMs);
}
