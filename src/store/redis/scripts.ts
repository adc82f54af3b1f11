// The Redis store's Lua scripts: each step of decide.ts (and decide-leash.ts) as one atomic
// script, one round trip. Kept as strings in a module (tsc copies no .lua files into dist/).
// keys.ts has the key layout; every script takes the record, its response and the dlq as KEYS[1..3]
// (then, per script, the keys named below) and the dlq member as ARGV[1].
//
// Record fields: state, phase, fp, ukey, owner, epoch, lease, attempts, created, updated,
// respUntil, meta (JSON, never decoded here), hasResp ('1' when a response was stored), and the
// nullable status, reqId, reason, intent (the intent hash it indexes) and holds (its budget holds,
// "bucket amount bucket amount …": bucket names hold no space), and for a write that needed a
// person's approval appr (pending | approved | denied | expired), apprUntil, apprAmount — a field
// that is absent is null.
//
// A step that settles a record takes, after its three KEYS, the record's intent index (if it has
// one) and its holds' counters in the record's order: the caller names them from the record
// begin returned (Fence.leash), and the script checks they are the record's own. Times are integer ms read
// from the server (`TIME`), so instances with skewed clocks agree. Nullable arguments arrive as
// '' for null and '=' followed by the text otherwise. No number goes through cjson.
//
// A step writes only what it changes: HSET of the fields that differ, HDEL of those that became
// null, ZADD/ZREM when the state is or leaves outcome_unknown. save() works that out for any change;
// the steps of every write (a new record, markSent, a completion) know their fields and write them in
// one HSET without it: its generic diff was a tenth of their instructions in Redis (callgrind).
// `completed` is final (decide.ts) and the only state with an expiry, so no step ever has an expiry
// to clear.

import { APPROVAL, REFUSAL } from './leash-scripts.js';
import { withPrelude } from './prelude.js';

/**
 * KEYS[4]: the sentinel in this record's slot; then, for a record this begin may create, its intent
 * index (when ARGV[10] is not ''), the derived key's pointer (when ARGV[13] is not '') and the
 * counters of its charges. ARGV: member, fingerprint, upstreamKey, owner, leaseMs, mode,
 * reclaimUnknown ('1'|'0'), meta JSON, the sentinel value this instance remembers, intent mode
 * ('' | 'guard' | 'claim'), intent hash, window ms, the pointer's value (this operation's key, or
 * ''), its ttl ms, the approval's amount ('' when none is needed) and ttl ms, the number of charges,
 * then per charge: bucket, amount, limit, resetAt ('' for none) — all of ARGV[10..] absent when the
 * write has none of them. With an approval, the approvals index follows the pointer in KEYS.
 * → {'created', now} when it made the record (acquired; with an approval, approval_required);
 * {outcome, fields, response|nil}; {'intent_duplicate', {m, k, c, s, st, meta}};
 * {'limit_exceeded', charge index (1-based), used}; or {'amnesia'} when the sentinel is not the
 * remembered one: the store lost data (flushed, evicted, failed over) and nothing it says holds.
 */
export const BEGIN = withPrelude(`
if redis.call('GET', KEYS[4]) ~= ARGV[9] then return {'amnesia'} end
local now = now_ms()
local fp, ukey, owner, leaseMs, mode, reclaim, meta = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7] == '1', ARGV[8]
local cur = load()
if cur == nil then
  -- decide-leash.ts decideAdmission: the intent first, then every charge; nothing changes on a refusal.
  -- A write with no leash sends none of ARGV[10..17] (codec.ts beginArgs): Redis parses nine arguments, not seventeen.
  local intentMode, n = ARGV[10] or '', tonumber(ARGV[17] or '0')
  local intent, pointer, approvals, first = nil, nil, nil, 5
  if intentMode ~= '' then intent = KEYS[first]; first = first + 1 end
  if (ARGV[13] or '') ~= '' then pointer = KEYS[first]; first = first + 1 end
  if (ARGV[15] or '') ~= '' then approvals = KEYS[first]; first = first + 1 end
  if intentMode == 'guard' then
    local h = redis.call('HMGET', intent, 'm', 'k', 'c', 's', 'st', 'meta')
    if h[1] and h[1] ~= ARGV[1] then return {'intent_duplicate', h} end
  end
  local fresh = {}
  for i = 0, n - 1 do
    local seen = redis.call('HGET', KEYS[first + i], 'used')
    fresh[i] = not seen
    local used = tonumber(seen or '0')
    -- amount > limit - used: both sides below 2^53, exact in Lua's doubles.
    if tonumber(ARGV[19 + i * 4]) > tonumber(ARGV[20 + i * 4]) - used then return {'limit_exceeded', i + 1, fmt(used)} end
  end
  local holds = {}
  for i = 0, n - 1 do
    local counter, amount, resetAt = KEYS[first + i], ARGV[19 + i * 4], ARGV[21 + i * 4]
    redis.call('HINCRBY', counter, 'used', amount)
    redis.call('HINCRBY', counter, 'held', amount)
    -- A period's counter gets its expiry when it is created; later writes leave it as it is.
    if resetAt ~= '' and fresh[i] then redis.call('PEXPIREAT', counter, resetAt) end
    holds[#holds + 1] = ARGV[18 + i * 4] .. ' ' .. amount
  end
  -- A new record: every field written at once (no diff against a record that is not there; never
  -- outcome_unknown, so never in the dlq). save's generic loop cost a tenth of this script (callgrind).
  local state, lease, nowText = 'in_flight', fmt(now + leaseMs), fmt(now)
  -- Above a threshold: held, not sent, until a person decides (decide.ts decideBegin).
  if approvals then state, lease = 'awaiting_approval', '0' end
  local fields = {
    'state', state, 'phase', 'claimed', 'fp', fp, 'ukey', ukey, 'owner', owner, 'epoch', '1',
    'lease', lease, 'attempts', '0', 'created', nowText, 'updated', nowText,
    'respUntil', '0', 'meta', meta, 'hasResp', '0',
  }
  local function add(k, v) fields[#fields + 1] = k; fields[#fields + 1] = v end
  if intent then add('intent', ARGV[11]) end
  if n > 0 then add('holds', table.concat(holds, ' ')) end
  if approvals then
    add('appr', 'pending'); add('apprUntil', fmt(now + tonumber(ARGV[16]))); add('apprAmount', ARGV[15])
    redis.call('ZADD', approvals, now, ARGV[1])
  end
  redis.call('HSET', KEYS[1], unpack(fields))
  if intent then
    -- Every field written: an earlier holder's (a claim takes the intent over) leaves nothing behind.
    redis.call('HSET', intent, 'm', ARGV[1], 'k', ukey, 'c', nowText, 's', state, 'st', '', 'meta', meta)
    redis.call('PEXPIRE', intent, ARGV[12])
  end
  if pointer then redis.call('SET', pointer, ARGV[13], 'PX', ARGV[14]) end
  -- The caller knows every field it sent: the server's clock is all it needs (codec.ts builds the record).
  return {'created', nowText}
end
-- A begin resent after its reply was lost: the claim it made is its own.
if cur.owner == owner and cur.state == 'in_flight' then return {'acquired', flatten(cur), false} end
local function claim()
  save(cur, {
    state = 'in_flight', phase = 'claimed', owner = owner,
    epoch = fmt(tonumber(cur.epoch) + 1), lease = fmt(now + leaseMs), updated = fmt(now),
  })
  return {'acquired', flatten(cur), false}
end
if cur.state == 'awaiting_approval' then
  -- The agent's re-send: the decision answers it.
  if cur.fp ~= fp then return {'mismatch', flatten(cur), false} end
  if cur.appr == 'approved' then return claim() end
  if cur.appr == 'pending' and now < tonumber(cur.apprUntil) then return {'approval_pending', flatten(cur), false} end
  if cur.appr == 'denied' then return {'approval_denied', flatten(cur), false} end
  return {'approval_expired', flatten(cur), false}
end
if mode == 'fresh' then return {'duplicate', flatten(cur), false} end
if cur.fp ~= fp then return {'mismatch', flatten(cur), false} end
if cur.state == 'completed' then
  if now < tonumber(cur.respUntil) then return {'replay', flatten(cur), redis.call('GET', KEYS[2])} end
  return {'expired', flatten(cur), false}
end
if cur.state == 'in_flight' then
  if now < tonumber(cur.lease) then return {'in_use', flatten(cur), false} end
  if not may_have_sent(cur) then return claim() end
  if reclaim then return claim() end
  save(cur, { state = 'outcome_unknown', reason = cur.reason or 'lease_expired_after_send', updated = fmt(now) })
  return {'unknown', flatten(cur), false}
end
if reclaim then return claim() end
return {'unknown', flatten(cur), false}
`);

/** ARGV: member, owner, epoch, leaseMs. → 'ok' | 'stale' */
export const MARK_SENT = withPrelude(`
local now = now_ms()
local owner, epoch, state, lease, attempts = unpack(redis.call('HMGET', KEYS[1], 'owner', 'epoch', 'state', 'lease', 'attempts'))
if not fenced(owner, epoch) or state ~= 'in_flight' or now >= tonumber(lease) then return 'stale' end
-- Read into locals and written in one HSET (the state stays in_flight: no dlq change; no field becomes
-- null): no record table and no diff — a markSent through read and save ran 1.3x the instructions.
redis.call('HSET', KEYS[1], 'phase', 'sent', 'attempts', fmt(tonumber(attempts) + 1), 'lease', fmt(now + tonumber(ARGV[4])), 'updated', fmt(now))
return 'ok'
`);

/** ARGV: member, owner, epoch, leaseMs. → 'ok' | 'stale' */
export const RENEW = withPrelude(`
local now = now_ms()
local cur = read('owner', 'epoch', 'state', 'lease')
if not fenced(cur.owner, cur.epoch) or cur.state ~= 'in_flight' then return 'stale' end
save(cur, { lease = fmt(math.max(tonumber(cur.lease), now + tonumber(ARGV[4]))), updated = fmt(now) })
return 'ok'
`);

/**
 * ARGV: member, owner, epoch, kind, then
 *   complete: status, requestId?, the stored response ('' for none: codec.ts responseArg), ttlMs, tombstoneMs
 *   unknown:  status?, requestId?, reason
 * → 'ok' | 'stale'
 */
export const FINISH = withPrelude(`
local now = now_ms()
local cur = read('owner', 'epoch', 'state', 'status', 'reqId', 'reason', 'intent', 'holds')
if not fenced(cur.owner, cur.epoch) or cur.state == 'completed' then return 'stale' end
local kind = ARGV[4]
if kind == 'complete' then
  settle_leash(cur, 'completed', ARGV[5])
  completed(cur, now, ARGV[5], opt(ARGV[6]) or false, ARGV[7] ~= '' and ARGV[7] or nil, ARGV[8], ARGV[9])
elseif kind == 'release' then
  settle_leash(cur, nil, nil)
  remove(cur)
else
  settle_leash(cur, 'outcome_unknown', opt(ARGV[5]))
  save(cur, {
    state = 'outcome_unknown', status = opt(ARGV[5]) or false, reqId = opt(ARGV[6]) or false, reason = ARGV[7],
    lease = '0', updated = fmt(now),
  })
end
return 'ok'
`);

/**
 * ARGV: member, epoch, kind ('executed'|'not_executed'), then for executed: status, the stored
 * response ('' when unknown), ttlMs, tombstoneMs. → 'ok' | 'stale'
 */
export const RESOLVE = withPrelude(`
local now = now_ms()
local cur = read('epoch', 'state', 'phase', 'attempts', 'lease', 'reqId', 'reason', 'intent', 'holds')
if not cur.state or tonumber(cur.epoch) ~= tonumber(ARGV[2]) then return 'stale' end
local unknown = cur.state == 'outcome_unknown' or (cur.state == 'in_flight' and may_have_sent(cur) and now >= tonumber(cur.lease))
if not unknown then return 'stale' end
if ARGV[3] == 'not_executed' then
  settle_leash(cur, nil, nil)
  remove(cur)
else
  local resp = ARGV[5] ~= '' and ARGV[5] or nil
  settle_leash(cur, 'completed', ARGV[4])
  completed(cur, now, ARGV[4], cur.reqId, resp, ARGV[6], ARGV[7])
  -- Told apart from an answer too large to store (store.ts RESOLVED_WITHOUT_ANSWER).
  if not resp then redis.call('HSET', KEYS[1], 'reason', 'resolved_without_answer') end
end
return 'ok'
`);

/**
 * Undoes a claim that replicas did not acknowledge (waitReplicas). ARGV: member, owner, epoch.
 * A record this claim created (epoch 1, never sent) is deleted. An older record keeps its
 * history: one that may have been sent (a reclaimed unknown) is outcome_unknown again; an unsent
 * one just loses the lease, so the next begin takes it over. → 'ok' | 'stale'
 */
export const UNCLAIM = withPrelude(`
local now = now_ms()
local cur = read('owner', 'epoch', 'state', 'phase', 'attempts', 'reason', 'intent', 'holds')
if not fenced(cur.owner, cur.epoch) or cur.state ~= 'in_flight' or cur.phase ~= 'claimed' then return 'stale' end
if tonumber(cur.epoch) == 1 and tonumber(cur.attempts) == 0 then
  settle_leash(cur, nil, nil)
  remove(cur)
  return 'ok'
end
if may_have_sent(cur) then
  settle_leash(cur, 'outcome_unknown', nil)
  save(cur, { state = 'outcome_unknown', reason = cur.reason or 'lease_expired_after_send', lease = '0', updated = fmt(now) })
else
  save(cur, { lease = fmt(now), updated = fmt(now) })
end
return 'ok'
`);

/** A consistent read of a record and its response. → false | {fields, response|nil} */
export const GET = `
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return false end
return {flat, redis.call('GET', KEYS[2])}
`;

export type ScriptName =
  'wgBegin' | 'wgMarkSent' | 'wgRenew' | 'wgFinish' | 'wgResolve' | 'wgUnclaim' | 'wgGet' | 'wgApproval' | 'wgRefusal';
/**
 * Each runs as EVALSHA with its number of keys first: a settling step takes as many as its record's
 * leash names. Its `…Buffer` variant (ioredis) answers every bulk string as a Buffer: the scripts that
 * return a stored answer (begin, get) run so, its body being raw bytes (codec.ts responseArg).
 */
export type ScriptCall = ScriptName | `${ScriptName}Buffer`;
export type ScriptRunner = Record<ScriptCall, (numberOfKeys: number, ...args: (string | Buffer)[]) => Promise<unknown>>;

export const SCRIPTS: Record<ScriptName, string> = {
  wgBegin: BEGIN,
  wgMarkSent: MARK_SENT,
  wgRenew: RENEW,
  wgFinish: FINISH,
  wgResolve: RESOLVE,
  wgUnclaim: UNCLAIM,
  wgGet: GET,
  wgApproval: APPROVAL,
  wgRefusal: REFUSAL,
};
