// The agent leash's own Lua scripts (DESIGN §10.4–10.5): a decision on an approval, and a refusal
// counted by the breaker. The claim's part of the leash (intents, budgets) is in scripts.ts BEGIN.
import { DECIDED_APPROVAL_KEEP_MS } from '../decide.js';
import { withPrelude } from './prelude.js';

/**
 * A decision on a pending approval (decide.ts decideApprovalStep). KEYS: the record's three, the
 * approvals index, then the record's leash keys. ARGV: member, epoch, 'approve' | 'deny' | 'expire'.
 * → 'ok' | 'stale'
 */
export const APPROVAL = withPrelude(`
local now = now_ms()
local cur = read('epoch', 'state', 'appr', 'apprUntil', 'intent', 'holds')
if not cur.state or tonumber(cur.epoch) ~= tonumber(ARGV[2]) or cur.state ~= 'awaiting_approval' or cur.appr ~= 'pending' then return 'stale' end
local expired, verdict = now >= tonumber(cur.apprUntil), ARGV[3]
if (verdict == 'approve' and expired) or (verdict == 'expire' and not expired) then return 'stale' end
redis.call('ZREM', KEYS[4], ARGV[1])
if verdict == 'approve' then
  save(cur, { appr = 'approved', updated = fmt(now) })
  return 'ok'
end
-- Denied, or nobody decided in time: nothing was sent, so its holds go back and its intent is free.
settle_leash(cur, 'awaiting_approval', nil, 'release', 5)
save(cur, { appr = verdict == 'deny' and 'denied' or 'expired', updated = fmt(now) })
redis.call('PEXPIREAT', KEYS[1], fmt(now + ${DECIDED_APPROVAL_KEEP_MS}))
return 'ok'
`);

/**
 * The breaker (DESIGN §10.5): one refused write counted. KEYS: the agent's refusal count, its pause.
 * ARGV: refusals, windowMs, pauseMs. → until when it is now paused (ms), or false.
 */
export const REFUSAL = withPrelude(`
local now = now_ms()
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n < tonumber(ARGV[1]) then return false end
redis.call('DEL', KEYS[1])
local untilMs = fmt(now + tonumber(ARGV[3]))
redis.call('SET', KEYS[2], untilMs, 'PXAT', untilMs)
return untilMs
`);
