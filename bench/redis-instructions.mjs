// Instructions Redis runs per script of a new write, counted by valgrind's callgrind on redis-server:
// what writeguard's Lua costs the shared Redis, independent of the machine's speed (its CPU per write
// in `npm run bench` moved 2.06x-2.86x of the SET NX proxy's between runs). User space only: the
// kernel's share of each round trip is not counted.
//
// One writeguard (the build in DIST, default this checkout's) writes five new payments to a private
// Redis with its EVALSHA calls captured (lib/capture-scripts.mjs); the last write's begin, markSent
// and finish are then replayed against a redis-server under callgrind, --count times each on fresh
// records (the record's key hash, and with --leash the intent's, suffixed per call), 100 to a
// pipeline after 200 of warm-up, and every reply checked ('created', then 'ok'). PING, counted the
// same way, is the floor of one command.
//   npm run build && node bench/redis-instructions.mjs [--dist DIST] [--leash] [--count 1000]
// About a minute. Loopback only; bounded by its counts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ROOT, startRedis, startUpstream, startWriteguard } from './contenders.mjs';
import { CORE_LOAD, stopAll } from './lib/procs.mjs';
import { uniqueBody } from './workloads.mjs';

const { values } = parseArgs({
  options: {
    dist: { type: 'string', default: join(ROOT, 'dist') },
    leash: { type: 'boolean', default: false },
    count: { type: 'string', default: '1000' },
  },
});
const DIST = resolve(values.dist);
const COUNT = Math.ceil(Number(values.count) / 100) * 100;
const { SCRIPTS } = await import(pathToFileURL(join(DIST, 'store/redis/scripts.js')).href);

/** The EVALSHA arguments of one new write's three steps, as a writeguard of DIST sent them. */
async function capture(tmp) {
  const file = join(tmp, 'scripts.jsonl');
  writeFileSync(file, '');
  const upstream = await startUpstream(tmp, { core: CORE_LOAD });
  const redis = await startRedis(tmp);
  const wg = await startWriteguard({
    tmp,
    name: 'wg-capture',
    upstreamUrl: upstream.url,
    redisPort: redis.port,
    cli: join(DIST, 'cli.js'),
    leash: values.leash,
    env: { NODE_OPTIONS: `--import ${pathToFileURL(join(ROOT, 'bench/lib/capture-scripts.mjs')).href}`, WG_CAPTURE_SCRIPTS: file },
  });
  try {
    for (let i = 0; i < 5; i++) {
      const tag = `capture-${Date.now().toString(36)}-${i}`;
      const res = await fetch(`${wg.url}/v1/payments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': tag },
        body: uniqueBody(tag, i),
      });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`capture write answered ${res.status}`);
    }
  } finally {
    await wg.stop();
    await redis.close();
  }
  const calls = readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  return calls.slice(-3);
}

const tmp = mkdtempSync(join(tmpdir(), 'writeguard-redis-instructions-'));
try {
  const [begin, markSent, finish] = await capture(tmp);
  const numKeys = Number(begin[1]);
  const argv = (call, n) => call[1 + Number(call[1]) + n]; // ARGV[n] (1-based) of an EVALSHA call
  const recordHash = begin[2].slice(begin[2].lastIndexOf(':') + 1);
  const intentHash = values.leash ? argv(begin, 11) : null;
  // A fresh record per call: the key hashes suffixed with the call's index, everywhere they appear.
  const suffixed = (text, hash, i) => (hash !== null && text.includes(hash) ? text.split(hash).join(`${hash}-${i}`) : text);
  const fresh = (call, i) =>
    call.map((a) => (typeof a === 'string' ? suffixed(suffixed(a, recordHash, i), intentHash, i) : Buffer.from(a.b64, 'base64')));

  const out = join(tmp, 'redis.callgrind');
  const redis = await startRedis(tmp, {
    name: 'redis-callgrind',
    core: null,
    wrap: ['valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`],
    readyTimeoutMs: 60_000,
  });
  const { client, entry: server } = redis;
  try {
    await client.set(begin[2 + 3], argv(begin, 9)); // the sentinel begin checks (KEYS[4], ARGV[9])
    for (const source of Object.values(SCRIPTS)) await client.script('LOAD', source);
    let dumps = 0;
    /** Instructions per call of `send(pipeline, i)` over `count` calls from `from`. */
    const counted = async (count, from, send, expect) => {
      execFileSync('callgrind_control', ['--zero', String(server.pid)], { stdio: 'ignore' });
      for (let i = from; i < from + count; i += 100) {
        const pipeline = client.pipeline();
        for (let j = i; j < i + 100; j++) send(pipeline, j);
        for (const [err, reply] of (await pipeline.exec()) ?? [])
          if (err !== null || !expect(reply)) throw err ?? new Error(`unexpected reply ${reply}`);
      }
      const trigger = `Trigger: dump step${++dumps}`;
      execFileSync('callgrind_control', [`--dump=step${dumps}`, String(server.pid)], { stdio: 'ignore' });
      for (let tries = 0; tries < 50; tries++) {
        for (const f of readdirSync(tmp).filter((x) => x.startsWith('redis.callgrind'))) {
          const text = readFileSync(join(tmp, f), 'utf8');
          const summary = /^summary: (\d+)/m.exec(text);
          if (text.includes(trigger) && summary !== null) return Number(summary[1]) / count;
        }
        await sleep(200);
      }
      throw new Error(`callgrind wrote no dump ${dumps}`);
    };
    const steps = [
      ['begin', begin, (r) => String(r[0]) === 'created'],
      ['markSent', markSent, (r) => r === 'ok'],
      ['finish', finish, (r) => r === 'ok'],
    ];
    const evalsha = (call) => (pipeline, i) => pipeline.call('evalsha', ...fresh(call, i));
    for (const [, call, expect] of steps) await counted(200, 1_000_000, evalsha(call), expect); // warm-up
    const per = {};
    for (const [name, call, expect] of steps) per[name] = await counted(COUNT, 0, evalsha(call), expect);
    const ping = await counted(
      COUNT,
      0,
      (pipeline) => pipeline.ping(),
      (r) => r === 'PONG',
    );
    const k = (x) => `${(x / 1000).toFixed(1)}k`;
    const total = per.begin + per.markSent + per.finish;
    process.stdout.write(
      `Redis instructions per script call, a new write${values.leash ? ' with the leash on' : ''} (callgrind; ${COUNT} calls each on fresh records, 100 to a pipeline; ${numKeys} keys to begin):\n` +
        `begin ${k(per.begin)}, markSent ${k(per.markSent)}, finish ${k(per.finish)}; the write ${k(total)}; PING ${k(ping)}\n`,
    );
  } finally {
    await redis.close();
  }
} finally {
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
