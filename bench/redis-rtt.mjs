// One client, one command at a time: how long a single Redis round trip takes from the server core,
// where writeguard runs. A new write makes three of them in sequence (begin, markSent, finish), so
// three of these are a floor under what writeguard on Redis adds to one agent's write.
// argv[2]: { port, seconds }. Prints {"p50":ms,"p99":ms,"n":count}.
import { Redis } from 'ioredis';

const { port, seconds } = JSON.parse(process.argv[2]);
const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
// The same shape as writeguard's steps: a script call by SHA, on a key of the run's own.
const sha = await redis.script('LOAD', "return redis.call('HSET', KEYS[1], 'f', ARGV[1])");
const samples = [];
const until = Date.now() + seconds * 1000;
for (let i = 0; Date.now() < until; i++) {
  const t = process.hrtime.bigint();
  await redis.evalsha(sha, 1, 'bench:rtt', String(i));
  samples.push(Number(process.hrtime.bigint() - t) / 1e6);
}
await redis.del('bench:rtt');
redis.disconnect();
samples.sort((a, b) => a - b);
const pct = (p) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))];
process.stdout.write(`${JSON.stringify({ p50: pct(50), p99: pct(99), n: samples.length })}\n`);
