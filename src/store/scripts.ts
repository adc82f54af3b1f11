// The Redis store's Lua scripts: each step of decide.ts as one atomic script, one round trip.
// Kept as strings in a module (tsc copies no .lua files into dist/).
//
// Layout (every key of one agent shares the `{scope}` hash tag, so one script may touch them all):
//   KEYS[1] record   `${prefix}{${scope}}:${upstream}:${keyHash}`  a hash of string fields
//   KEYS[2] response `${record}:resp`                               JSON of the StoredResponse
//   KEYS[3] dlq      `${prefix}{${scope}}:dlq`                      zset, member `${upstream}:${keyHash}`, score updatedAt
//   ARGV[1] the dlq member.
//
// Record fields: state, phase, fp, ukey, owner, epoch, lease, attempts, created, updated,
// respUntil, meta (JSON, never decoded here), hasResp ('1' when a response was stored), and the
// nullable status, reqId, reason (a field that is absent is null). Times are integer ms read
// from the server (`TIME`), so instances with skewed clocks agree. Nullable arguments arrive as
// '' for null and '=' followed by the text otherwise. No number goes through cjson.

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(n) return string.format('%.0f', n) end
local function opt(s) if s == '' then return nil end return string.sub(s, 2) end
local function load()
  local flat = redis.call('HGETALL', KEYS[1])
  if #flat == 0 then return nil end
  local r = {}
  for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
  return r
end
local function flatten(r)
  local out = {}
  for k, v in pairs(r) do out[#out + 1] = k; out[#out + 1] = v end
  return out
end
-- Replaces the record; expiresAt nil: never expires. The dlq member is present iff outcome_unknown.
local function save(r, expiresAt)
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], unpack(flatten(r)))
  if expiresAt then redis.call('PEXPIREAT', KEYS[1], fmt(expiresAt)) end
  if r.state == 'outcome_unknown' then redis.call('ZADD', KEYS[3], r.updated, ARGV[1])
  else redis.call('ZREM', KEYS[3], ARGV[1]) end
end
local function remove()
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
local function fenced(r, owner, epoch)
  return r ~= nil and r.owner == owner and tonumber(r.epoch) == tonumber(epoch)
end
local function may_have_sent(r)
  return r.phase == 'sent' or tonumber(r.attempts) > 0
end
local function completed(r, now, status, reqId, resp, ttlMs, tombMs)
  local respUntil = now + tonumber(ttlMs)
  r.state = 'completed'; r.status = status; r.reqId = reqId; r.reason = nil
  r.respUntil = fmt(respUntil); r.lease = '0'; r.updated = fmt(now)
  if resp then
    r.hasResp = '1'
    redis.call('SET', KEYS[2], resp, 'PXAT', fmt(respUntil))
  else
    r.hasResp = '0'
    redis.call('DEL', KEYS[2])
  end
  save(r, respUntil + tonumber(tombMs))
end
`;

/** ARGV: member, fingerprint, upstreamKey, owner, leaseMs, mode, reclaimUnknown ('1'|'0'), meta JSON. → {outcome, fields, response|nil} */
export const BEGIN = `${PRELUDE}
local now = now_ms()
local fp, ukey, owner, leaseMs, mode, reclaim, meta = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7] == '1', ARGV[8]
local cur = load()
if cur == nil then
  local r = {
    state = 'in_flight', phase = 'claimed', fp = fp, ukey = ukey, owner = owner, epoch = '1',
    lease = fmt(now + leaseMs), attempts = '0', created = fmt(now), updated = fmt(now),
    respUntil = '0', meta = meta, hasResp = '0',
  }
  save(r, nil)
  return {'acquired', flatten(r), false}
end
-- A begin resent after its reply was lost: the claim it made is its own.
if cur.owner == owner and cur.state == 'in_flight' then return {'acquired', flatten(cur), false} end
if mode == 'fresh' then return {'duplicate', flatten(cur), false} end
if cur.fp ~= fp then return {'mismatch', flatten(cur), false} end
local function claim()
  cur.state = 'in_flight'; cur.phase = 'claimed'; cur.owner = owner
  cur.epoch = fmt(tonumber(cur.epoch) + 1); cur.lease = fmt(now + leaseMs); cur.updated = fmt(now)
  save(cur, nil)
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
  cur.state = 'outcome_unknown'
  if cur.reason == nil then cur.reason = 'lease_expired_after_send' end
  cur.updated = fmt(now)
  save(cur, nil)
  return {'unknown', flatten(cur), false}
end
if reclaim then return claim() end
return {'unknown', flatten(cur), false}
`;

/** ARGV: member, owner, epoch, leaseMs. → 'ok' | 'stale' */
export const MARK_SENT = `${PRELUDE}
local now = now_ms()
local cur = load()
if not fenced(cur, ARGV[2], ARGV[3]) or cur.state ~= 'in_flight' or now >= tonumber(cur.lease) then return 'stale' end
cur.phase = 'sent'; cur.attempts = fmt(tonumber(cur.attempts) + 1)
cur.lease = fmt(now + tonumber(ARGV[4])); cur.updated = fmt(now)
save(cur, nil)
return 'ok'
`;

/** ARGV: member, owner, epoch, leaseMs. → 'ok' | 'stale' */
export const RENEW = `${PRELUDE}
local now = now_ms()
local cur = load()
if not fenced(cur, ARGV[2], ARGV[3]) or cur.state ~= 'in_flight' then return 'stale' end
cur.lease = fmt(math.max(tonumber(cur.lease), now + tonumber(ARGV[4]))); cur.updated = fmt(now)
save(cur, nil)
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
local cur = load()
if not fenced(cur, ARGV[2], ARGV[3]) or cur.state == 'completed' then return 'stale' end
local kind = ARGV[4]
if kind == 'complete' then
  completed(cur, now, ARGV[5], opt(ARGV[6]), opt(ARGV[7]), ARGV[8], ARGV[9])
elseif kind == 'release' then
  remove()
else
  cur.state = 'outcome_unknown'; cur.status = opt(ARGV[5]); cur.reqId = opt(ARGV[6]); cur.reason = ARGV[7]
  cur.lease = '0'; cur.updated = fmt(now)
  save(cur, nil)
end
return 'ok'
`;

/** ARGV: member, epoch, kind ('executed'|'not_executed'), then for executed: status, response JSON ('' when unknown), ttlMs, tombstoneMs. → 'ok' | 'stale' */
export const RESOLVE = `${PRELUDE}
local now = now_ms()
local cur = load()
if cur == nil or tonumber(cur.epoch) ~= tonumber(ARGV[2]) then return 'stale' end
local unknown = cur.state == 'outcome_unknown' or (cur.state == 'in_flight' and may_have_sent(cur) and now >= tonumber(cur.lease))
if not unknown then return 'stale' end
if ARGV[3] == 'not_executed' then
  remove()
else
  local resp = nil
  if ARGV[5] ~= '' then resp = ARGV[5] end
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
local cur = load()
if not fenced(cur, ARGV[2], ARGV[3]) or cur.state ~= 'in_flight' or cur.phase ~= 'claimed' then return 'stale' end
if tonumber(cur.epoch) == 1 and tonumber(cur.attempts) == 0 then
  remove()
  return 'ok'
end
if may_have_sent(cur) then
  cur.state = 'outcome_unknown'
  if cur.reason == nil then cur.reason = 'lease_expired_after_send' end
  cur.lease = '0'
else
  cur.lease = fmt(now)
end
cur.updated = fmt(now)
save(cur, nil)
return 'ok'
`;

/** A consistent read of a record and its response. → false | {fields, response|nil} */
export const GET = `
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return false end
return {flat, redis.call('GET', KEYS[2])}
`;
