// Redis round trips per request type, counted exactly: MONITOR tells a command a client sent
// (one round trip) from one a Lua script ran inside Redis (source "lua", no round trip), which
// INFO commandstats alone cannot. Both are reported: commandstats shows the work Redis does.
// Requests go one at a time so every command lands in the window of its request type.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

const BODY = '{"amount":1250,"currency":"eur","customer":"cus_bench","description":"round trips"}';
/** A new write's body: BODY's shape, its own customer, so a leash's intent check never sees a repeat. */
const runId = randomBytes(6).toString('hex');
let n = 0;
const newWriteBody = () => BODY.replace('cus_bench', `cus_${runId}_${++n}`);
/** The store's scripts by the SHA1 EVALSHA names them with (dist/: `npm run bench` builds first). */
const { SCRIPTS } = await import('../dist/store/redis/scripts.js');
const SCRIPT_BY_SHA = new Map(Object.entries(SCRIPTS).map(([name, lua]) => [createHash('sha1').update(lua).digest('hex'), name]));
/** MONITOR lines arrive after the answers they belong to: wait for stragglers before closing a window. */
const DRAIN_MS = 300;

/** The periodic sentinel check (redis.ts: once a second) is background work, not a request's. */
const isBackground = (cmd, key) =>
  (cmd === 'get' && typeof key === 'string' && /sentinel(:ack)?$/.test(key)) || cmd === 'info' || cmd === 'monitor';

function tally(list) {
  const out = {};
  for (const x of list) out[x] = (out[x] ?? 0) + 1;
  return out;
}

/**
 * @param {{ client: import('ioredis').Redis, calls: () => Promise<Record<string, number>> }} redis
 * @param {string} url  writeguard on that Redis
 * @param {{ count: () => Promise<{get:number, post:number}> }} upstream
 * @param {string[]} [only]  the request types to count (ids: read, new, replay, derived); all by default
 */
export async function countRoundTrips({ redis, url, upstream, n = 200, only = null }) {
  const monitor = await redis.client.monitor();
  const seen = [];
  monitor.on('monitor', (_time, args, source) => seen.push({ lua: source === 'lua', cmd: String(args[0]).toLowerCase(), key: args[1] }));
  const post = (headers, body = BODY) =>
    fetch(`${url}/v1/payments`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
  const replayKey = `trips-replay-${randomUUID()}`;

  const types = [
    { id: 'read', label: 'read (GET)', send: () => fetch(`${url}/v1/items`) },
    { id: 'new', label: 'new write (client key)', send: () => post({ 'idempotency-key': `trips-${randomUUID()}` }, newWriteBody()) },
    {
      id: 'replay',
      label: 'replay (finished key)',
      prime: async () => {
        const res = await post({ 'idempotency-key': replayKey });
        await res.arrayBuffer();
        if (res.status !== 201) throw new Error(`priming the replay key answered ${res.status}`);
      },
      send: () => post({ 'idempotency-key': replayKey }),
    },
    {
      id: 'derived',
      label: 'new write (no key: derived)',
      send: () => post({}, BODY.replace('round trips', `round trips ${randomUUID()}`)),
    },
  ];

  const out = [];
  try {
    for (const t of types.filter((x) => only === null || only.includes(x.id))) {
      if (t.prime) await t.prime();
      await sleep(DRAIN_MS);
      const mark = seen.length;
      const statsBefore = await redis.calls();
      const countBefore = await upstream.count();
      const statuses = [];
      for (let i = 0; i < n; i++) {
        const res = await t.send();
        await res.arrayBuffer();
        statuses.push(res.status);
      }
      await sleep(DRAIN_MS);
      const window = seen.slice(mark);
      const statsAfter = await redis.calls();
      const countAfter = await upstream.count();
      const client = window.filter((c) => !c.lua && !isBackground(c.cmd, c.key));
      const stats = {};
      for (const [cmd, v] of Object.entries(statsAfter)) {
        const d = v - (statsBefore[cmd] ?? 0);
        if (d > 0) stats[cmd] = d / n;
      }
      out.push({
        id: t.id,
        label: t.label,
        n,
        roundTripsPerReq: client.length / n,
        clientCommands: tally(client.map((c) => c.cmd)),
        luaCommandsPerReq: window.filter((c) => c.lua).length / n,
        commandstatsPerReq: stats,
        upstreamRequests: countAfter.get + countAfter.post - countBefore.get - countBefore.post,
        statuses: tally(statuses),
      });
    }
  } finally {
    monitor.disconnect();
  }
  return out;
}

/**
 * Where Redis spends a new write's time, script by script: `n` new writes one at a time with SLOWLOG
 * logging every command (its time is the command's execution, script-internal commands included; no
 * network). Run without MONITOR, which would slow every script. → { n, byScript: { wgBegin: {calls, medianUs, meanUs} … } }
 */
export async function scriptTimes({ redis, url, n = 200 }) {
  const { client } = redis;
  const [, before] = await client.config('GET', 'slowlog-log-slower-than');
  const [, maxLen] = await client.config('GET', 'slowlog-max-len');
  await client.config('SET', 'slowlog-max-len', String(n * 8));
  await client.config('SET', 'slowlog-log-slower-than', '0');
  await client.slowlog('RESET');
  try {
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${url}/v1/payments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `times-${randomUUID()}` },
        body: newWriteBody(),
      });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`a timed write answered ${res.status}`);
    }
    const times = {};
    for (const [, , us, args] of await client.slowlog('GET', n * 8)) {
      const name = String(args[0]).toLowerCase() === 'evalsha' ? SCRIPT_BY_SHA.get(String(args[1])) : undefined;
      if (name !== undefined) (times[name] ??= []).push(Number(us));
    }
    const byScript = {};
    for (const [name, list] of Object.entries(times)) {
      list.sort((a, b) => a - b);
      byScript[name] = { calls: list.length, medianUs: list[list.length >> 1], meanUs: list.reduce((a, b) => a + b, 0) / list.length };
    }
    return { n, byScript };
  } finally {
    await client.config('SET', 'slowlog-log-slower-than', before);
    await client.config('SET', 'slowlog-max-len', maxLen);
  }
}
