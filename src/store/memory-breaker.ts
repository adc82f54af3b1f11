// The memory store's breaker state (DESIGN §10.5), per process: each agent's refusal count in its
// window, and its pause. Bounded like records: past the bound new counts are not kept (an agent
// is then paused later, never wrongly).
interface Count {
  n: number;
  until: number;
}

const id = (scope: string, upstream: string): string => `${scope}\u0000${upstream}`;

export class MemoryBreaker {
  private readonly counts = new Map<string, Count>();
  private readonly paused = new Map<string, number>();

  constructor(private readonly maxEntries: number) {}

  pausedUntil(scope: string, upstream: string, now: number): number | null {
    const until = this.paused.get(id(scope, upstream));
    if (until === undefined) return null;
    if (now < until) return until;
    this.paused.delete(id(scope, upstream));
    return null;
  }

  noteRefusal(scope: string, upstream: string, rule: { refusals: number; windowMs: number; pauseMs: number }, now: number): number | null {
    const key = id(scope, upstream);
    let count = this.counts.get(key);
    if (count === undefined || now >= count.until) {
      if (count === undefined && this.counts.size >= this.maxEntries) this.sweep(now);
      if (count === undefined && this.counts.size >= this.maxEntries) return null;
      count = { n: 0, until: now + rule.windowMs };
      this.counts.set(key, count);
    }
    count.n++;
    if (count.n < rule.refusals) return null;
    this.counts.delete(key);
    const until = now + rule.pauseMs;
    this.paused.set(key, until);
    return until;
  }

  resume(scope: string, upstreams: readonly string[], now: number): boolean {
    let was = false;
    for (const upstream of upstreams) {
      was = this.pausedUntil(scope, upstream, now) !== null || was;
      this.paused.delete(id(scope, upstream));
      this.counts.delete(id(scope, upstream));
    }
    return was;
  }

  sweep(now: number): void {
    for (const [key, count] of this.counts) if (now >= count.until) this.counts.delete(key);
    for (const [key, until] of this.paused) if (now >= until) this.paused.delete(key);
  }
}
