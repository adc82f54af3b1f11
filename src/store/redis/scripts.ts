// The Redis store's Lua scripts: each step of decide.ts (and decide-leash.ts) as one atomic
// script, one round trip. Kept as strings in a module (tsc copies no .lua files into dist/).
// keys.ts has the key layout; every script takes the record, its response and the dlq as KEYS[1..3]
// (then, per script, the keys named below) and the dlq member as ARGV[1].
//
// Record fields: state, phase, fp, ukey, owner, epoch, lease, attempts, created, updated,
// respUntil, meta (JSON, never decoded here), hasResp ('1' when a response was stored), and the
// nullable status, reqId, reason, intent (the intent hash it indexes) and holds (its budget holds,
// "bucket amount bucket amount …": bucket names hold no space) — a field that is absent is null.
//
// A step that settles a record takes, after its three KEYS, the record's intent index (if it has
// one) and its holds' counters in the record's order: the caller names them from the record
// begin returned (Fence.leash), and the script checks they are the record's own. Times are integer ms read
// from the server (`TIME`), so instances with skewed clocks agree. Nullable arguments arrive as
// '' for null and '=' followed by the text otherwise. No number goes through cjson.
//
// A step writes only what it changes: HSET of the fields that differ, HDEL of those that became
// null, ZADD/ZREM when the state is or leaves outcome_unknown. `completed` is final (decide.ts)
// and the only state with an expiry, so no step ever has an expiry to clear.

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(n) return string.format('%.0f', n) end
local function opt(s) if s == '' then return nil end return string.sub(s, 2) end
-- The whole record, or nil.
local function load()
  local flat = redis.call('HGETALL', KEYS[1])
  if #flat == 0 then return nil end
  local r = {}
  for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
  return r
end
-- Only the named fields; an absent one (or every one, when there is no record) is false.
local function read(...)
  local names = {...}
  local values = redis.call('HMGET', KEYS[1], unpack(names))
  local r = {}
  for i = 1, #names do r[names[i]] = values[i] end
  return r
end
local function flatten(r)
  local out = {}
  for k, v in pairs(r) do out[#out + 1] = k; out[#out + 1] = v end
  return out
end
-- Applies changes (field -> string, false for null) to the record r was read from, and r itself.
-- A field that may become null must have been read; one not read is written. The dlq member is
-- present iff outcome_unknown, scored by the last update.
local function save(r, changes)
  local was = r.state
  local set, gone = {}, {}
  for k, v in pairs(changes) do
    if v then
      if r[k] ~= v then set[#set + 1] = k; set[#set + 1] = v end
    elseif r[k] then
      gone[#gone + 1] = k
    end
    r[k] = v or nil
  end
  if #set > 0 then redis.call('HSET', KEYS[1], unpack(set)) end
  if #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end
  if r.state == 'outcome_unknown' then redis.call('ZADD', KEYS[3], r.updated, ARGV[1])
  elseif was == 'outcome_unknown' then redis.call('ZREM', KEYS[3], ARGV[1]) end
end
local function remove(r)
  redis.call('DEL', KEYS[1], KEYS[2])
  if r.state == 'outcome_unknown' then redis.call('ZREM', KEYS[3], ARGV[1]) end
end
local function fenced(r, owner, epoch)
  return r.owner == owner and tonumber(r.epoch) == tonumber(epoch)
end
local function may_have_sent(r)
  return r.phase == 'sent' or tonumber(r.attempts) > 0
end
-- The record's intent index and holds, from the KEYS after the first three (see the header).
local function leash_of(r)
  local i = 4
  local intent = nil
  if r.intent then intent = KEYS[i]; i = i + 1 end
  local holds = {}
  for bucket, amount in string.gmatch(r.holds or '', '(%S+) (%S+)') do
    local k = KEYS[i]
    if k == nil or string.sub(k, -(#bucket + 1)) ~= ':' .. bucket then error("leash keys are not the record's own") end
    holds[#holds + 1] = {k, amount}
    i = i + 1
  end
  return intent, holds
end
-- decide-leash.ts leashFate: 'spend' (it ran, or may have), 'release' (proof nothing moved), or
-- 'keep'; r is the record before the change, state/status after it (state nil: deleted).
local function settle_leash(r, state, status)
  if r.state == 'completed' then return end
  local fate = 'keep'
  if state == nil then fate = 'release'
  elseif state == 'completed' then
    local st = tonumber(status) or 0
    if st >= 400 and st < 500 then fate = 'release' else fate = 'spend' end
  end
  local intent, holds = leash_of(r)
  if fate ~= 'keep' then
    for _, h in ipairs(holds) do
      -- A counter whose period is over is gone: nothing to give back to it.
      if redis.call('EXISTS', h[1]) == 1 then
        redis.call('HINCRBY', h[1], 'held', '-' .. h[2])
        if fate == 'release' then redis.call('HINCRBY', h[1], 'used', '-' .. h[2]) end
      end
    end
  end
  if intent and redis.call('HGET', intent, 'm') == ARGV[1] then
    if fate == 'release' then redis.call('DEL', intent)
    else redis.call('HSET', intent, 's', state, 'st', status or '') end
  end
end
-- r must hold state, reqId and reason; reqId false for null.
local function completed(r, now, status, reqId, resp, ttlMs, tombMs)
  local respUntil = now + tonumber(ttlMs)
  save(r, {
    state = 'completed', status = status, reqId = reqId, reason = false,
    respUntil = fmt(respUntil), lease = '0', updated = fmt(now), hasResp = resp and '1' or '0',
  })
  -- Without a response, none may stay: one left by an earlier record here (evicted, deleted by hand) would replay.
  if resp then redis.call('SET', KEYS[2], resp, 'PXAT', fmt(respUntil))
  else redis.call('DEL', KEYS[2]) end
  redis.call('PEXPIREAT', KEYS[1], fmt(respUntil + tonumber(tombMs)))
end
`;

/**
 * KEYS[4]: the sentinel in this record's slot; then, for a record this begin may create, its intent
 * index (when ARGV[10] is not ''), the derived key's pointer (when ARGV[13] is not '') and the
 * counters of its charges. ARGV: member, fingerprint, upstreamKey, owner, leaseMs, mode,
 * reclaimUnknown ('1'|'0'), meta JSON, the sentinel value this instance remembers, intent mode
 * ('' | 'guard' | 'claim'), intent hash, window ms, the pointer's value (this operation's key, or
 * ''), its ttl ms, the number of charges, then per charge: bucket, amount, limit, resetAt ('' for none).
 * → {outcome, fields, response|nil}; {'intent_duplicate', {m, k, c, s, st, meta}};
 * {'limit_exceeded', charge index (1-based), used}; or {'amnesia'} when the sentinel is not the
 * remembered one: the store lost data (flushed, evicted, failed over) and nothing it says holds.
 */
export const BEGIN = `${PRELUDE}
if redis.call('GET', KEYS[4]) ~= ARGV[9] then return {'amnesia'} end
local now = now_ms()
local fp, ukey, owner, leaseMs, mode, reclaim, meta = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7] == '1', ARGV[8]
local cur = load()
if cur == nil then
  -- decide-leash.ts decideAdmission: the intent first, then every charge; nothing changes on a refusal.
  local intent, pointer, first, n = nil, nil, 5, tonumber(ARGV[15])
  if ARGV[10] ~= '' then intent = KEYS[first]; first = first + 1 end
  if ARGV[13] ~= '' then pointer = KEYS[first]; first = first + 1 end
  if ARGV[10] == 'guard' then
    local h = redis.call('HMGET', intent, 'm', 'k', 'c', 's', 'st', 'meta')
    if h[1] and h[1] ~= ARGV[1] then return {'intent_duplicate', h} end
  end
  for i = 0, n - 1 do
    local used = tonumber(redis.call('HGET', KEYS[first + i], 'used') or '0')
    -- amount > limit - used: both sides below 2^53, exact in Lua's doubles.
    if tonumber(ARGV[17 + i * 4]) > tonumber(ARGV[18 + i * 4]) - used then return {'limit_exceeded', i + 1, fmt(used)} end
  end
  local holds = {}
  for i = 0, n - 1 do
    local counter, amount, resetAt = KEYS[first + i], ARGV[17 + i * 4], ARGV[19 + i * 4]
    redis.call('HINCRBY', counter, 'used', amount)
    redis.call('HINCRBY', counter, 'held', amount)
    if resetAt ~= '' then redis.call('PEXPIREAT', counter, resetAt) end
    holds[#holds + 1] = ARGV[16 + i * 4] .. ' ' .. amount
  end
  cur = {}
  local fields = {
    state = 'in_flight', phase = 'claimed', fp = fp, ukey = ukey, owner = owner, epoch = '1',
    lease = fmt(now + leaseMs), attempts = '0', created = fmt(now), updated = fmt(now),
    respUntil = '0', meta = meta, hasResp = '0',
  }
  if intent then fields.intent = ARGV[11] end
  if n > 0 then fields.holds = table.concat(holds, ' ') end
  save(cur, fields)
  if intent then
    -- Every field written: an earlier holder's (a claim takes the intent over) leaves nothing behind.
    redis.call('HSET', intent, 'm', ARGV[1], 'k', ukey, 'c', fmt(now), 's', 'in_flight', 'st', '', 'meta', meta)
    redis.call('PEXPIRE', intent, ARGV[12])
  end
  if pointer then redis.call('SET', pointer, ARGV[13], 'PX', ARGV[14]) end
  return {'acquired', flatten(cur), false}
end
-- A begin resent after its reply was lost: the claim it made is its own.
if cur.owner == owner and cur.state == 'in_flight' then return {'acquired', flatten(cur), false} end
if mode == 'fresh' then return {'duplicate', flatten(cur), false} end
if cur.fp ~= fp then return {'mismatch', flatten(cur), false} end
local function claim()
  save(cur, {
    state = 'in_flight', phase = 'claimed', owner = owner,
    epoch = fmt(tonumber(cur.epoch) + 1), lease = fmt(now + leaseMs), updated = fmt(now),
  })
  return {'acquired', flatten(cur), false}
end
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
`;

/** ARGV: member, owner, epoch, leaseMs. → 'ok' | 'stale' */
export const MARK_SENT = `${PRELUDE}
local now = now_ms()
local cur = read('owner', 'epoch', 'state', 'lease', 'attempts')
if not fenced(cur, ARGV[2], ARGV[3]) or cur.state ~= 'in_flight' or now >= tonumber(cur.lease) then return 'stale' end
save(cur, { phase = 'sent', attempts = fmt(tonumber(cur.attempts) + 1), lease = fmt(now + tonumber(ARGV[4])), updated = fmt(now) })
return 'ok'
`;

/** ARGV: member, owner, epoch, leaseMs. → 'ok' | 'stale' */
export const RENEW = `${PRELUDE}
local now = now_ms()
local cur = read('owner', 'epoch', 'state', 'lease')
if not fenced(cur, ARGV[2], ARGV[3]) or cur.state ~= 'in_flight' then return 'stale' end
save(cur, { lease = fmt(math.max(tonumber(cur.lease), now + tonumber(ARGV[4]))), updated = fmt(now) })
return 'ok'
`;

/**
 * ARGV: member, owner, epoch, kind, then
 *   complete: status, requestId?, response JSON?, ttlMs, tombstoneMs
 *   unknown:  status?, requestId?, reason
 * → 'ok' | 'stale'
 */
export const FINISH = `${PRELUDE}
local now = now_ms()
local cur = read('owner', 'epoch', 'state', 'status', 'reqId', 'reason', 'intent', 'holds')
if not fenced(cur, ARGV[2], ARGV[3]) or cur.state == 'completed' then return 'stale' end
local kind = ARGV[4]
if kind == 'complete' then
  settle_leash(cur, 'completed', ARGV[5])
  completed(cur, now, ARGV[5], opt(ARGV[6]) or false, opt(ARGV[7]), ARGV[8], ARGV[9])
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
`;

/** ARGV: member, epoch, kind ('executed'|'not_executed'), then for executed: status, response JSON ('' when unknown), ttlMs, tombstoneMs. → 'ok' | 'stale' */
export const RESOLVE = `${PRELUDE}
local now = now_ms()
local cur = read('epoch', 'state', 'phase', 'attempts', 'lease', 'reqId', 'reason', 'intent', 'holds')
if not cur.state or tonumber(cur.epoch) ~= tonumber(ARGV[2]) then return 'stale' end
local unknown = cur.state == 'outcome_unknown' or (cur.state == 'in_flight' and may_have_sent(cur) and now >= tonumber(cur.lease))
if not unknown then return 'stale' end
if ARGV[3] == 'not_executed' then
  settle_leash(cur, nil, nil)
  remove(cur)
else
  local resp = nil
  if ARGV[5] ~= '' then resp = ARGV[5] end
  settle_leash(cur, 'completed', ARGV[4])
  completed(cur, now, ARGV[4], cur.reqId, resp, ARGV[6], ARGV[7])
end
return 'ok'
`;

/**
 * Undoes a claim that replicas did not acknowledge (waitReplicas). ARGV: member, owner, epoch.
 * A record this claim created (epoch 1, never sent) is deleted. An older record keeps its
 * history: one that may have been sent (a reclaimed unknown) is outcome_unknown again; an unsent
 * one just loses the lease, so the next begin takes it over. → 'ok' | 'stale'
 */
export const UNCLAIM = `${PRELUDE}
local now = now_ms()
local cur = read('owner', 'epoch', 'state', 'phase', 'attempts', 'reason', 'intent', 'holds')
if not fenced(cur, ARGV[2], ARGV[3]) or cur.state ~= 'in_flight' or cur.phase ~= 'claimed' then return 'stale' end
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
`;

/** A consistent read of a record and its response. → false | {fields, response|nil} */
export const GET = `
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return false end
return {flat, redis.call('GET', KEYS[2])}
`;

/**
 * The breaker (DESIGN §10.5): one refused write counted. KEYS: the agent's refusal count, its pause.
 * ARGV: refusals, windowMs, pauseMs. → until when it is now paused (ms), or false.
 */
export const REFUSAL = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n < tonumber(ARGV[1]) then return false end
redis.call('DEL', KEYS[1])
local untilMs = string.format('%.0f', now + tonumber(ARGV[3]))
redis.call('SET', KEYS[2], untilMs, 'PXAT', untilMs)
return untilMs
`;

export type ScriptName = 'wgBegin' | 'wgMarkSent' | 'wgRenew' | 'wgFinish' | 'wgResolve' | 'wgUnclaim' | 'wgGet' | 'wgRefusal';
/** Each runs as EVALSHA with its number of keys first: a settling step takes as many as its record's leash names. */
export type ScriptRunner = Record<ScriptName, (numberOfKeys: number, ...args: string[]) => Promise<unknown>>;

export const SCRIPTS: Record<ScriptName, string> = {
  wgBegin: BEGIN,
  wgMarkSent: MARK_SENT,
  wgRenew: RENEW,
  wgFinish: FINISH,
  wgResolve: RESOLVE,
  wgUnclaim: UNCLAIM,
  wgGet: GET,
  wgRefusal: REFUSAL,
};
