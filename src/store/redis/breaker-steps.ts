// The breaker's store steps on Redis (DESIGN §10.5): an agent's pause, its refusal count, and an
// operator's resume. The caller maps failures (steps.ts).
import { wholeMs } from './codec.js';
import { breakerKeys } from './keys.js';
import type { Lookups } from './lookups.js';

const keysOf = (ctx: Lookups, scope: string, upstream: string) => breakerKeys(ctx.keys({ scope, upstream, keyHash: '' }));

export async function pausedUntil(ctx: Lookups, scope: string, upstream: string): Promise<number | null> {
  const until = await ctx.client.get(keysOf(ctx, scope, upstream).paused);
  return until === null ? null : Number(until);
}

export async function noteRefusal(
  ctx: Lookups,
  scope: string,
  upstream: string,
  rule: { refusals: number; windowMs: number; pauseMs: number },
): Promise<number | null> {
  const { refusals, paused } = keysOf(ctx, scope, upstream);
  const until = await ctx.scripts.wgRefusal(2, refusals, paused, String(rule.refusals), wholeMs(rule.windowMs), wholeMs(rule.pauseMs));
  return typeof until === 'string' ? Number(until) : null;
}

/** True if the agent was paused on one of these upstreams. */
export async function resume(ctx: Lookups, scope: string, upstreams: readonly string[]): Promise<boolean> {
  let was = false;
  for (const upstream of upstreams) {
    const { refusals, paused } = keysOf(ctx, scope, upstream);
    was = (await ctx.client.del(paused)) > 0 || was;
    await ctx.client.del(refusals);
  }
  return was;
}
