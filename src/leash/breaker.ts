// The breaker (DESIGN §10.5), pure: which ends of a write count as refusals of the agent, and what a
// paused agent is told. The count and the pause live in the store, shared by the fleet.
import { WriteguardError, type ErrorCode } from '../errors.js';

/** writeguard's refusals of what the agent asked for: the leash said no. */
const LEASH_REFUSALS: ReadonlySet<ErrorCode> = new Set([
  'recipient_not_allowed',
  'asset_not_allowed',
  'policy_violation',
  'limit_exceeded',
  'amount_invalid',
  'possible_duplicate',
]);

/**
 * Whether a write's end counts against the agent: a leash refusal, or the upstream's definitive
 * 4xx (it refused the write). Not a rate limit (429), an ambiguous 408/425, or anything of
 * writeguard's own making (store down, in use, unknown outcome): those are not the agent's doing.
 */
export function countsAsRefusal(end: { code: ErrorCode | null; upstreamStatus: number | null }): boolean {
  if (end.code !== null) return LEASH_REFUSALS.has(end.code);
  const s = end.upstreamStatus;
  return s !== null && s >= 400 && s < 500 && s !== 408 && s !== 425 && s !== 429;
}

export function agentPaused(untilMs: number, nowMs: number, rule: { refusals: number; windowSec: number }): WriteguardError {
  const seconds = Math.max(1, Math.ceil((untilMs - nowMs) / 1000));
  const until = new Date(untilMs).toISOString();
  return new WriteguardError(
    'agent_paused',
    `this agent's writes are paused until ${until}: ${rule.refusals} of its writes were refused within ${rule.windowSec} s ` +
      '(by the policy, a budget, or the upstream). Nothing was sent. Stop and tell a person what you were trying to do; ' +
      'an operator can resume the agent before then (writeguard agents resume).',
    { headers: { 'retry-after': String(seconds) }, extensions: { paused_until: until } },
  );
}
