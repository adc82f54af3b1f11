// One connection, one request at a time: the sidecar's real life (one agent), timed per request
// with hrtime. autocannon records whole milliseconds, too coarse for a 0.5 ms budget, hence this.
// Same protocol as load-worker.mjs: {"event":"warm"}, wait for "go" on stdin, {"event":"result"}.
// argv[2]: { url, mode: 'get' | 'post-key', warmupSec, durationSec }.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { createInterface } from 'node:readline';

const spec = JSON.parse(process.argv[2]);
const url = new URL(spec.url);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
const BODY = '{"amount":1250,"currency":"eur","customer":"cus_bench","description":"bench payment"}';
const runId = randomBytes(6).toString('hex');
let n = 0;

function timedRequest() {
  const post = spec.mode !== 'get';
  const i = post ? ++n : 0;
  // A new body per write, as in load-worker.mjs: the leash's intent check must never see a repeat.
  const body = post ? BODY.replace('cus_bench', `cus_${runId}_${i}`) : undefined;
  const headers = post
    ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'idempotency-key': `seq-${runId}-${i}` }
    : {};
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = request(
      { host: url.hostname, port: url.port, agent, method: post ? 'POST' : 'GET', path: post ? '/v1/payments' : '/v1/items', headers },
      (res) => {
        res.on('data', () => {});
        res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function loop(seconds, samples) {
  const until = Date.now() + seconds * 1000;
  let non2xx = 0;
  let errors = 0;
  while (Date.now() < until) {
    try {
      const r = await timedRequest();
      if (r.status < 200 || r.status > 299) non2xx++;
      samples?.push(r.ms);
    } catch {
      errors++;
    }
  }
  return { non2xx, errors };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

await loop(spec.warmupSec);
process.stdout.write('{"event":"warm"}\n');
const lines = createInterface({ input: process.stdin });
const [line] = await once(lines, 'line');
if (line.trim() !== 'go') process.exit(1);
const samples = [];
const started = Date.now();
const { non2xx, errors } = await loop(spec.durationSec, samples);
const durationSec = (Date.now() - started) / 1000;
samples.sort((a, b) => a - b);
process.stdout.write(
  `${JSON.stringify({
    event: 'result',
    total: samples.length + errors,
    durationSec,
    rps: samples.length / durationSec,
    p50: pct(samples, 50),
    p99: pct(samples, 99),
    mean: samples.reduce((a, b) => a + b, 0) / samples.length,
    errors,
    timeouts: 0,
    non2xx,
    statusCodes: {},
  })}\n`,
);
lines.close();
agent.destroy();
process.exit(0);
