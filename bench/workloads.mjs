// What is measured, and for how long. The defaults keep `npm run bench` under 15 minutes on the
// 2-core machine; the env knobs shorten it for a smoke run or lengthen it for a calmer one.
const env = process.env;
const num = (v, d) => (v === undefined || v === '' || !Number.isFinite(Number(v)) ? d : Number(v));

/** The payment every bench write sends (a replay sends it as is). */
export const BODY = '{"amount":1250,"currency":"eur","customer":"cus_bench","description":"bench payment"}';
/** BODY's shape with a customer of its own, `cus_<tag>_<i>`: a new write the leash's intent check lets through. */
export const uniqueBody = (tag, i) => BODY.replace('cus_bench', `cus_${tag}_${i}`);

export const cfg = {
  rounds: num(env.BENCH_ROUNDS, 3),
  warmupSec: num(env.BENCH_WARMUP_SEC, 2),
  durationSec: num(env.BENCH_DURATION_SEC, 5),
  connections: 50,
  seqWarmupSec: 1,
  seqDurationSec: num(env.BENCH_SEQ_SEC, 5),
  // Issue 6: RSS "with 200 concurrent writes in flight" — the upstream holds each POST a second.
  inflight: { connections: 200, postDelayMs: 1000, warmupSec: 2, durationSec: 8 },
  // Issue 6: "no growth over a 3-minute run" — new writes on Redis at full speed, RSS traced.
  // 130 s: enough to judge growth (the report needs 120 s), and room in the 15 minutes for the tracing
  // contender, the leash at one rate and the profiles of missed targets.
  soakSec: num(env.BENCH_SOAK_SEC, 130),
  // "A receiver that hangs does not slow the agent's requests": two writeguards refusing every write
  // (each refusal an alert), one with alerts to a hanging receiver, one without, interleaved A B B A.
  // A 1 s warm-up fills the alert queue (1000 events) many times over; ~30 s in all.
  alertsHang: { rounds: 2, warmupSec: 1, durationSec: Math.min(4, num(env.BENCH_DURATION_SEC, 5)) },
  // The leash's CPU target compared at one offered rate (a share of leash-on's saturated req/s), so
  // both sides batch their syscalls alike: interleaved A B B A, `rounds` times (~47 s each). A warm
  // process idle for two minutes needs seconds to get back: leash-on at 700 req/s after 120 s idle spent
  // 1580, 942, 705, 512 µs per write in its first four seconds, then ~400 as before it idled. So 6 s of
  // warm-up first (with 3 s, one pair measured 1.94x and the other 1.16x).
  leashAtRate: { share: 0.6, rounds: 1, warmupSec: 6, durationSec: 4 },
  tripsPerType: 200,
  profile: env.BENCH_PROFILE !== '0',
  // The budget is 15 minutes; everything is stopped before it, whatever is running.
  deadlineMs: 14.9 * 60_000,
};

const ALL = ['direct', 'bare', 'nginx', 'setnx', 'wg-mem', 'wg-redis'];

export const WORKLOADS = [
  {
    id: 'get',
    kind: 'throughput',
    mode: 'get',
    title: 'Reads: GET passthrough',
    contenders: ['direct', 'bare', 'floor', 'nginx', 'wg-mem', 'wg-redis'],
    note: '`GET /v1/items`, small JSON. No key, no record, one log line; writeguard sends reads through its retry loop (undici) and sends a small answer back whole (a large one streams).',
  },
  {
    id: 'post-key',
    kind: 'throughput',
    mode: 'post-key',
    title: 'New writes: POST with a unique Idempotency-Key',
    // The leash and tracing run here only: this is the write they change (see the seq-write entry for
    // why not there). BENCH_TRACING=0 leaves the tracing contender out (~25 s less).
    contenders: [...ALL, 'wg-leash', 'wg-otel'],
    note: "`POST /v1/payments`, a new key and a new body per request (autocannon `setupRequest`; the body keeps its shape, only `customer` becomes `cus_<run>_<n>`, for every contender): writeguard's full write path — fingerprint, begin, markSent, forward, finish (stores the 1 KiB answer), log. The SET NX contender claims the key before and records the status after. *Leash on*: the same writeguard on Redis with one spend budget (`body:amount`, per day, limit 2^53 − 1: it counts every write and refuses none) and an intent (`body:amount`, `body:currency`, `body:customer`, 600 s window, `keyed: guard`), both checked and reserved inside the begin script. *Tracing on*: the same writeguard on Redis with OpenTelemetry on (`OTEL_EXPORTER_OTLP_ENDPOINT` set, SDK defaults otherwise: every request sampled, batches of up to 512 spans), exporting OTLP/HTTP JSON to a loopback sink on the server core that accepts and discards; tracing off is writeguard on Redis itself.",
  },
  {
    id: 'post-replay',
    kind: 'throughput',
    mode: 'post-replay',
    title: 'Replays: POST of one finished key',
    ratioBase: 'direct-writes',
    contenders: ['floor', 'wg-mem', 'wg-redis'],
    note: "The key is sent once first; then every request replays its stored answer. The upstream's own counter (`GET /__count`) must not move during the run (warm-up included). Ratios are to direct's *new-write* throughput.",
  },
  {
    id: 'post-keyless',
    kind: 'throughput',
    mode: 'post-keyless',
    title: 'Keyless writes: POST with a unique body and no key (derived key)',
    // nginx only forwards here, as it does for keyed writes: left out to keep the run under 15 minutes.
    contenders: ['direct', 'bare', 'wg-mem', 'wg-redis'],
    note: 'No `Idempotency-Key`: writeguard derives one from the request. Every body differs (an identical keyless body is refused with 409 possible_duplicate, by design).',
  },
  {
    id: 'seq-write',
    kind: 'latency',
    mode: 'post-key',
    tool: 'seq',
    title: 'One connection: sequential writes (added latency)',
    // Not the leash-on contender: its 3 more runs (~7 s each) would take the full run to about 14.1 min,
    // too close to the 14.5-minute deadline; its cost is measured in post-key (CPU) and by the round trips.
    contenders: ['direct', 'bare', 'wg-mem', 'wg-redis'],
    note: 'One agent: one keep-alive connection, one `POST` with a new key at a time, timed per request with hrtime. "Added" is over direct, median of rounds.',
  },
];

/** The load client's spec for a workload against `url`. */
export const spec = (wl, url, extra = {}) => ({
  url,
  mode: wl.mode,
  connections: cfg.connections,
  warmupSec: wl.tool === 'seq' ? cfg.seqWarmupSec : cfg.warmupSec,
  durationSec: wl.tool === 'seq' ? cfg.seqDurationSec : cfg.durationSec,
  ...extra,
});
