// The load generator, in a process of its own (pinned to the load core by the caller): autocannon
// for a warm-up, then — once the parent has sampled the system under test and says "go" on
// stdin — the measured run. Prints one JSON line per event on stdout: {"event":"warm"}, then
// {"event":"result", ...}. argv[2] is the JSON spec: { url, mode, connections, warmupSec,
// durationSec, replayKey?, rate? }.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { BODY, uniqueBody } from './workloads.mjs';

const spec = JSON.parse(process.argv[2]);
// Unique per worker process, so no two runs (nor rounds) ever share a key or a body.
const runId = randomBytes(6).toString('hex');
let n = 0;
const newWriteBody = (i) => uniqueBody(runId, i);

/** The request of each workload. setupRequest runs per request: every key / body is new. */
function requestFor(mode) {
  const post = { method: 'POST', path: '/v1/payments', headers: { 'content-type': 'application/json' }, body: BODY };
  switch (mode) {
    case 'get':
      return { method: 'GET', path: '/v1/items' };
    case 'post-key':
      // A new key and a new body each time: the agent leash's intent check (a writeguard contender
      // with `intent` on) would refuse a second write of the same amount, currency and customer with
      // 409 possible_duplicate. Every contender gets the same requests: a fair comparison.
      return {
        ...post,
        setupRequest: (req) => {
          const i = ++n;
          return { ...req, headers: { ...post.headers, 'idempotency-key': `bench-${runId}-${i}` }, body: newWriteBody(i) };
        },
      };
    case 'post-replay':
      return { ...post, headers: { ...post.headers, 'idempotency-key': spec.replayKey } };
    case 'post-keyless':
      // writeguard answers 409 possible_duplicate to an identical keyless body: each must differ.
      return {
        ...post,
        setupRequest: (req) => ({
          ...req,
          body: `{"amount":1250,"currency":"eur","customer":"cus_bench","description":"bench ${runId} ${++n}"}`,
        }),
      };
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

function run(durationSec) {
  return autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: durationSec,
    requests: [requestFor(spec.mode)],
    // A fixed offered rate (req/s over all connections) instead of as fast as the server answers.
    ...(spec.rate ? { overallRate: spec.rate } : {}),
    // The default 10 s would cut the in-flight memory check's queued writes short.
    timeout: 30,
  });
}

function emit(event) {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

if (spec.warmupSec > 0) await run(spec.warmupSec);
emit({ event: 'warm' });
const lines = createInterface({ input: process.stdin });
const [line] = await once(lines, 'line');
if (line.trim() !== 'go') process.exit(1);
const r = await run(spec.durationSec);
emit({
  event: 'result',
  total: r.requests.total,
  durationSec: r.duration,
  rps: r.requests.total / r.duration,
  p50: r.latency.p50,
  p99: r.latency.p99,
  errors: r.errors,
  timeouts: r.timeouts,
  non2xx: r.non2xx,
  statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count])),
});
lines.close();
process.exit(0);
