// The Redis store's Lua scripts: each step of decide.ts as one atomic script, one round trip.
// Kept as strings in a module (tsc copies no .lua files into dist/). Below them: the command
// table they are defined under, and the keys (recordKeys) and KEYS order (scriptKeys) they take.
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
//
// A step writes only what it changes: HSET of the fields that differ, HDEL of those that became
// null, ZADD/ZREM when the state is or leaves outcome_unknown. `completed` is final (decide.ts)
// and the only state with an expiry, so no step ever has an expiry to clear.
import type { RecordKey } from '../store.js';
import { sentinelKey } from './sentinel.js';
import { slotSentinelKey } from './slot-sentinels.js';

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
 * KEYS[4]: the sentinel in this record's slot. ARGV: member, fingerprint, upstreamKey, owner,
 * leaseMs, mode, reclaimUnknown ('1'|'0'), meta JSON, the sentinel value this instance remembers.
 * → {outcome, fields, response|nil}, or {'amnesia'} when the sentinel is not the remembered one:
 * the store lost data (flushed, evicted, failed over) and nothing it says about this key holds.
 */
export const BEGIN = `${PRELUDE}
if redis.call('GET', KEYS[4]) ~= ARGV[9] then return {'amnesia'} end
local now = now_ms()
local fp, ukey, owner, leaseMs, mode, reclaim, meta = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7] == '1', ARGV[8]
local cur = load()
if cur == nil then
  cur = {}
  save(cur, {
    state = 'in_flight', phase = 'claimed', fp = fp, ukey = ukey, owner = owner, epoch = '1',
    lease = fmt(now + leaseMs), attempts = '0', created = fmt(now), updated = fmt(now),
    respUntil = '0', meta = meta, hasResp = '0',
  })
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
local cur = read('owner', 'epoch', 'state', 'status', 'reqId', 'reason')
if not fenced(cur, ARGV[2], ARGV[3]) or cur.state == 'completed' then return 'stale' end
local kind = ARGV[4]
if kind == 'complete' then
  completed(cur, now, ARGV[5], opt(ARGV[6]) or false, opt(ARGV[7]), ARGV[8], ARGV[9])
elseif kind == 'release' then
  remove(cur)
else
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
local cur = read('epoch', 'state', 'phase', 'attempts', 'lease', 'reqId', 'reason')
if not cur.state or tonumber(cur.epoch) ~= tonumber(ARGV[2]) then return 'stale' end
local unknown = cur.state == 'outcome_unknown' or (cur.state == 'in_flight' and may_have_sent(cur) and now >= tonumber(cur.lease))
if not unknown then return 'stale' end
if ARGV[3] == 'not_executed' then
  remove(cur)
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
local cur = read('owner', 'epoch', 'state', 'phase', 'attempts', 'reason')
if not fenced(cur, ARGV[2], ARGV[3]) or cur.state ~= 'in_flight' or cur.phase ~= 'claimed' then return 'stale' end
if tonumber(cur.epoch) == 1 and tonumber(cur.attempts) == 0 then
  remove(cur)
  return 'ok'
end
if may_have_sent(cur) then
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

export type ScriptName = 'wgBegin' | 'wgMarkSent' | 'wgRenew' | 'wgFinish' | 'wgResolve' | 'wgUnclaim' | 'wgGet';
export type ScriptRunner = Record<ScriptName, (...args: string[]) => Promise<unknown>>;

export const SCRIPTS: Record<ScriptName, { lua: string; keys: number }> = {
  wgBegin: { lua: BEGIN, keys: 4 },
  wgMarkSent: { lua: MARK_SENT, keys: 3 },
  wgRenew: { lua: RENEW, keys: 3 },
  wgFinish: { lua: FINISH, keys: 3 },
  wgResolve: { lua: RESOLVE, keys: 3 },
  wgUnclaim: { lua: UNCLAIM, keys: 3 },
  wgGet: { lua: GET, keys: 2 },
};

export interface KeySet {
  record: string;
  resp: string;
  dlq: string;
  member: string;
  /** The sentinel the begin script checks: the store's one, or on a Cluster the record's slot's. */
  sentinel: string;
}

export function recordKeys(keyPrefix: string, key: RecordKey, cluster: boolean): KeySet {
  const tag = `${keyPrefix}{${key.scope}}`;
  const record = `${tag}:${key.upstream}:${key.keyHash}`;
  const sentinel = cluster ? slotSentinelKey(keyPrefix, key.scope) : sentinelKey(keyPrefix);
  return { record, resp: `${record}:resp`, dlq: `${tag}:dlq`, member: `${key.upstream}:${key.keyHash}`, sentinel };
}

/** KEYS then ARGV[1] (the dlq member); begin also reads its slot's sentinel. */
export function scriptKeys(name: ScriptName, keys: KeySet): string[] {
  if (name === 'wgBegin') return [keys.record, keys.resp, keys.dlq, keys.sentinel, keys.member];
  return [keys.record, keys.resp, keys.dlq, keys.member];
}
