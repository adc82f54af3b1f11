// The Lua helpers the scripts of the Redis store start with (scripts.ts has the record's field
// layout): the server's clock, reading and saving a record, and settling its leash. A script is
// compiled once, but its body runs on every call, and each `local function` in it makes a closure
// then: a script gets only the helpers it calls (the role Redis functions would play, without a
// library to load on every node before the first write).
/** In definition order: a helper calls only helpers defined before it. */
const HELPERS: readonly (readonly [name: string, source: string])[] = [
  [
    'now_ms',
    `
-- Arithmetic coerces TIME's strings itself: one strtod each, where tonumber() takes two.
local function now_ms()
  local t = redis.call('TIME')
  return t[1] * 1000 + math.floor(t[2] / 1000)
end
`,
  ],
  [
    'fmt',
    `
-- Every number written is an integer below 2^53 (ms, counts, minor units): '%d' prints it exactly
-- through a C long, without the floating-point printf '%.0f' needs (a tenth of Redis's time per write).
local function fmt(n) return string.format('%d', n) end
`,
  ],
  [
    'opt',
    `
local function opt(s) if s == '' then return nil end return string.sub(s, 2) end
`,
  ],
  [
    'load',
    `
-- The whole record, or nil.
local function load()
  local flat = redis.call('HGETALL', KEYS[1])
  if #flat == 0 then return nil end
  local r = {}
  for i = 1, #flat, 2 do r[flat[i]] = flat[i + 1] end
  return r
end
`,
  ],
  [
    'read',
    `
-- Only the named fields; an absent one (or every one, when there is no record) is false.
local function read(...)
  local names = {...}
  local values = redis.call('HMGET', KEYS[1], unpack(names))
  local r = {}
  for i = 1, #names do r[names[i]] = values[i] end
  return r
end
`,
  ],
  [
    'flatten',
    `
local function flatten(r)
  local out = {}
  for k, v in pairs(r) do out[#out + 1] = k; out[#out + 1] = v end
  return out
end
`,
  ],
  [
    'save',
    `
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
`,
  ],
  [
    'remove',
    `
local function remove(r)
  redis.call('DEL', KEYS[1], KEYS[2])
  if r.state == 'outcome_unknown' then redis.call('ZREM', KEYS[3], ARGV[1]) end
end
`,
  ],
  [
    'fenced',
    `
-- A record's owner and epoch against the caller's fence (ARGV[2], ARGV[3] in every step that has one).
local function fenced(owner, epoch)
  return owner == ARGV[2] and tonumber(epoch) == tonumber(ARGV[3])
end
`,
  ],
  [
    'may_have_sent',
    `
local function may_have_sent(r)
  return r.phase == 'sent' or tonumber(r.attempts) > 0
end
`,
  ],
  [
    'leash_of',
    `
-- The record's intent index and holds, from KEYS[first] on (after the first three, unless said).
local function leash_of(r, first)
  local i = first or 4
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
`,
  ],
  [
    'fate_of',
    `
-- decide-leash.ts leashFate: 'spend' (it ran, or may have), 'release' (proof nothing moved), or
-- 'keep'; r is the record before the change, state/status after it (state nil: deleted).
local function fate_of(r, state, status)
  if r.state == 'completed' then return 'keep' end
  if state == nil then return 'release' end
  if state ~= 'completed' then return 'keep' end
  local st = tonumber(status) or 0
  if st >= 400 and st < 500 then return 'release' end
  return 'spend'
end
`,
  ],
  [
    'settle_leash',
    `
local function settle_leash(r, state, status, fate, first)
  -- A record with no leash (most writes) has nothing to settle.
  if r.state == 'completed' or not (r.intent or r.holds) then return end
  fate = fate or fate_of(r, state, status)
  local intent, holds = leash_of(r, first)
  if fate ~= 'keep' then
    for _, h in ipairs(holds) do
      -- A live counter still holds this hold, so it stays >= 0; below 0, its period was over and the
      -- counter gone: HINCRBY made a new one without an expiry, which goes again (nothing to give back).
      if redis.call('HINCRBY', h[1], 'held', '-' .. h[2]) < 0 then redis.call('DEL', h[1])
      elseif fate == 'release' then redis.call('HINCRBY', h[1], 'used', '-' .. h[2]) end
    end
  end
  if intent and redis.call('HGET', intent, 'm') == ARGV[1] then
    if fate == 'release' then redis.call('DEL', intent)
    else redis.call('HSET', intent, 's', state, 'st', status or '') end
  end
end
`,
  ],
  [
    'completed',
    `
-- r must hold state, reqId and reason; reqId false for null. The fields are known, so they are
-- written directly, not through save's generic diff (a tenth of a finish's instructions, callgrind).
local function completed(r, now, status, reqId, resp, ttlMs, tombMs)
  local respUntil = now + tonumber(ttlMs)
  local untilText = fmt(respUntil)
  local set = {
    'state', 'completed', 'status', status, 'respUntil', untilText, 'lease', '0', 'updated', fmt(now),
    'hasResp', resp and '1' or '0',
  }
  if reqId then set[#set + 1] = 'reqId'; set[#set + 1] = reqId end
  redis.call('HSET', KEYS[1], unpack(set))
  local gone = {}
  if r.reason then gone[#gone + 1] = 'reason' end
  if r.reqId and not reqId then gone[#gone + 1] = 'reqId' end
  if #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end
  if r.state == 'outcome_unknown' then redis.call('ZREM', KEYS[3], ARGV[1]) end
  -- Without a response, none may stay: one left by an earlier record here (evicted, deleted by hand) would replay.
  if resp then redis.call('SET', KEYS[2], resp, 'PXAT', untilText)
  else redis.call('DEL', KEYS[2]) end
  redis.call('PEXPIREAT', KEYS[1], fmt(respUntil + tonumber(tombMs)))
end
`,
  ],
];

const calls = (source: string, name: string): boolean => new RegExp(`\\b${name}\\(`).test(source);

/** The script: the helpers `body` calls (and those they call), then `body`. */
export function withPrelude(body: string): string {
  // Walking back from the last helper, a helper's callees are still ahead: one pass finds them all.
  const needed: string[] = [];
  let text = body;
  for (let i = HELPERS.length - 1; i >= 0; i--) {
    const [name, source] = HELPERS[i]!;
    if (!calls(text, name)) continue;
    needed.unshift(source);
    text += source;
  }
  return needed.join('') + body;
}
