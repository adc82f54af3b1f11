// OpenTelemetry tracing against a real local OTLP/HTTP receiver: a keyed write continues the agent's
// W3C trace (its request span, one attempt span the upstream sees as parent, the store steps as
// events, trace_id in the response line); a replay has no attempt span; a write retried after a 429
// has two; a read has one; a passthrough write has none (its request span is the upstream's parent).
// From the CLI, the env var decides: set, the spans leave by the exporter (flushed on SIGTERM);
// unset, nothing is sent to the receiver and the agent's traceparent reaches the upstream untouched.
// A collector that cannot be reached costs the agent nothing.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTracing } from '../../src/observe/tracing.js';
import { KIND, startOtlpReceiver, STATUS, type ExportedSpan, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { freePort } from '../helpers/ports.js';
import { echo, startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { eventually } from '../helpers/wait.js';
import { launchWriteguard, startWriteguard, type LogLine, type RunningWriteguard, type WriteguardProcess } from '../helpers/writeguard.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const WAIT_MS = 5_000;
const BODY = '{"amount":2500,"currency":"eur"}';

let receiver: OtlpReceiver;
const processes: WriteguardProcess[] = [];
before(async () => {
  receiver = await startOtlpReceiver();
  // Read by the SDK when startTracing builds it: export to the receiver, in batches 20 ms apart.
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
  process.env.OTEL_BSP_SCHEDULE_DELAY = '20';
});
after(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.kill('SIGKILL');
  await receiver.close();
});

/** A fresh upstream and traced writeguard per test: a 429 cools the agent down, so tests must not share one. */
async function withTraced(
  respond: Parameters<typeof startUpstream>[0],
  body: (up: CountingUpstream, wg: RunningWriteguard) => Promise<void>,
): Promise<void> {
  const up = await startUpstream(respond);
  const upstream = { name: 'api', target: up.url, retry: { baseDelayMs: 5, maxDelayMs: 10 } };
  const routes = [{ match: 'POST /v1/quotes', mode: 'passthrough' as const }];
  const wg = await startWriteguard({ upstreams: [{ ...upstream, routes }] }, { tracing: startTracing });
  try {
    await body(up, wg);
  } finally {
    await wg.close();
    await up.close();
  }
}

const write = (url: string, headers: Record<string, string>): Promise<Response> =>
  fetch(`${url}/v1/payments`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: BODY });

/** The spans of one trace, once its request span (which ends last, after its attempts') has arrived. */
async function traceOf(traceId: string): Promise<{ server: ExportedSpan; clients: ExportedSpan[] }> {
  const spans = () => receiver.spans.filter((s) => s.traceId === traceId);
  await eventually(() => spans().some((s) => s.kind === KIND.server), WAIT_MS, { what: `the request span of trace ${traceId}` });
  const servers = spans().filter((s) => s.kind === KIND.server);
  assert.equal(servers.length, 1, 'one request span per trace');
  assert.equal(spans().length, servers.length + spans().filter((s) => s.kind === KIND.client).length, 'only request and attempt spans');
  const resends = (s: ExportedSpan): number => Number(s.attributes['http.request.resend_count'] ?? 0);
  const clients = spans()
    .filter((s) => s.kind === KIND.client)
    .sort((a, b) => resends(a) - resends(b));
  return { server: servers[0]!, clients };
}

/** The upstream's traceparent → its trace id and parent span id (flags: sampled). */
function parentOf(traceparent: string | string[] | undefined): { traceId: string; spanId: string } {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(traceparent));
  assert.ok(m !== null, `a W3C traceparent: ${String(traceparent)}`);
  return { traceId: m[1]!, spanId: m[2]! };
}

const lastLine = async (wg: { logs: { waitForResponses(n: number): Promise<LogLine[]> } }, n: number): Promise<LogLine> =>
  (await wg.logs.waitForResponses(n))[n - 1]!;

test("a keyed write continues the agent's trace; its replay is a request span with no attempt", async () => {
  await withTraced(echo, async (up, wg) => {
    const res = await write(wg.url, {
      'idempotency-key': 'otel-write-1',
      traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`,
      tracestate: 'vendor=agent-state',
    });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
    assert.equal(up.count(), 1);
    const sent = up.received[0]!;
    const upstreamParent = parentOf(sent.headers.traceparent);
    assert.equal(upstreamParent.traceId, TRACE_ID);
    assert.equal(sent.headers.tracestate, 'vendor=agent-state');

    const { server, clients } = await traceOf(TRACE_ID);
    assert.equal(server.parentSpanId, PARENT_ID, "the request span's parent is the agent's span");
    assert.equal(server.name, 'POST');
    assert.equal(server.status, STATUS.unset);
    const line = await lastLine(wg, 1);
    assert.deepEqual(server.attributes, {
      'http.request.method': 'POST',
      'url.path': '/v1/payments',
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(wg.url).port),
      'http.response.status_code': 201,
      'writeguard.outcome': 'forwarded',
      'writeguard.attempts': 1,
      'writeguard.upstream': 'api',
      'writeguard.key_source': 'client',
      'writeguard.idempotency_key': line.idempotency_key as string,
    });
    assert.deepEqual(
      server.events.map((e) => e.name),
      ['store.begin', 'store.markSent', 'store.finish'],
    );
    for (const e of server.events) assert.ok(typeof e.attributes['writeguard.store.duration_ms'] === 'number', e.name);
    assert.equal(server.resource['service.name'], 'writeguard');

    assert.equal(clients.length, 1);
    const [attempt] = clients;
    assert.equal(attempt!.parentSpanId, server.spanId, "the attempt's parent is the request span");
    assert.equal(attempt!.spanId, upstreamParent.spanId, "the upstream's parent is the attempt span");
    assert.deepEqual(attempt!.attributes, {
      'http.request.method': 'POST',
      'server.address': '127.0.0.1',
      'server.port': up.port,
      'url.full': `${up.url}/v1/payments`,
      'writeguard.upstream': 'api',
      'http.response.status_code': 201,
    });
    assert.deepEqual([line.trace_id, line.span_id, line.outcome], [TRACE_ID, server.spanId, 'forwarded']);

    // The replay, in a trace of its own.
    const replayTrace = 'a'.repeat(32);
    const again = await write(wg.url, { 'idempotency-key': 'otel-write-1', traceparent: `00-${replayTrace}-${'b'.repeat(16)}-01` });
    assert.equal(again.status, 201);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    await again.arrayBuffer();
    const replay = await traceOf(replayTrace);
    assert.equal(replay.clients.length, 0, 'a replay sends nothing upstream: no attempt span');
    assert.equal(up.count(), 1);
    assert.equal(replay.server.attributes['writeguard.outcome'], 'replayed');
    assert.equal(replay.server.attributes['writeguard.attempts'], 0);
    assert.deepEqual(
      replay.server.events.map((e) => e.name),
      ['store.begin'],
    );
    const replayLine = await lastLine(wg, 2);
    assert.deepEqual([replayLine.trace_id, replayLine.outcome], [replayTrace, 'replayed']);
    assert.ok(receiver.requests.every((r) => r.method === 'POST' && r.path === '/v1/traces' && r.contentType === 'application/json'));
  });
});

test('a write retried after a 429 has two attempt spans, each the parent of what the upstream received', async () => {
  let calls = 0;
  await withTraced(
    (req, res) => {
      if (++calls > 1) return echo(req, res);
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '0' }).end('{"error":{"type":"rate_limited"}}');
    },
    async (up, wg) => {
      // No traceparent from the agent: the request span starts a trace.
      const res = await write(wg.url, { 'idempotency-key': 'otel-429' });
      assert.equal(res.status, 201);
      await res.arrayBuffer();
      assert.equal(up.count(), 2);
      const line = await lastLine(wg, 1);
      const { server, clients } = await traceOf(line.trace_id as string);
      assert.equal(server.parentSpanId, '');
      assert.equal(line.span_id, server.spanId);
      assert.equal(server.attributes['writeguard.attempts'], 2);
      assert.equal(server.attributes['http.response.status_code'], 201);
      assert.equal(clients.length, 2);
      for (const [i, client] of clients.entries()) {
        assert.equal(client.parentSpanId, server.spanId);
        assert.deepEqual(parentOf(up.received[i]!.headers.traceparent), { traceId: server.traceId, spanId: client.spanId });
      }
      assert.deepEqual(
        clients.map((c) => [
          c.attributes['http.response.status_code'],
          c.attributes['error.type'],
          c.attributes['http.request.resend_count'],
          c.status,
        ]),
        [
          [429, '429', undefined, STATUS.error],
          [201, undefined, 1, STATUS.unset],
        ],
      );
    },
  );
});

test("a read's attempt span is the upstream's parent; a passthrough write, sent once outside the attempt path, has the request span", async () => {
  await withTraced(echo, async (up, wg) => {
    const read = await fetch(`${wg.url}/v1/items?limit=1`, { headers: { traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` } });
    assert.equal(read.status, 200);
    await read.arrayBuffer();
    const quote = await fetch(`${wg.url}/v1/quotes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${'3'.repeat(32)}-${'4'.repeat(16)}-01` },
      body: BODY,
    });
    assert.equal(quote.status, 201);
    await quote.arrayBuffer();
    assert.equal(up.count(), 2);

    const reads = await traceOf('1'.repeat(32));
    assert.equal(reads.clients.length, 1);
    assert.deepEqual(parentOf(up.received[0]!.headers.traceparent), { traceId: '1'.repeat(32), spanId: reads.clients[0]!.spanId });
    assert.deepEqual(
      [reads.server.attributes['url.path'], reads.server.attributes['writeguard.attempts'], reads.clients[0]!.attributes['url.full']],
      ['/v1/items', 1, `${up.url}/v1/items`],
    );

    const passthrough = await traceOf('3'.repeat(32));
    assert.equal(passthrough.clients.length, 0);
    assert.deepEqual(parentOf(up.received[1]!.headers.traceparent), { traceId: '3'.repeat(32), spanId: passthrough.server.spanId });
    assert.deepEqual(
      [passthrough.server.attributes['http.response.status_code'], passthrough.server.attributes['writeguard.attempts']],
      [201, 1],
    );
  });
});

/** The built CLI in front of `up`, with `env` (nothing else of this process's environment). */
function launch(up: CountingUpstream, env: Record<string, string>): WriteguardProcess {
  const wg = launchWriteguard(['--upstream', up.url], { WRITEGUARD_PORT: '0', WRITEGUARD_ADMIN_PORT: '0', ...env });
  processes.push(wg);
  return wg;
}

async function stopped(wg: WriteguardProcess): Promise<void> {
  wg.kill('SIGTERM');
  const code = await Promise.race([wg.exited, new Promise<'late'>((r) => setTimeout(() => r('late'), WAIT_MS).unref())]);
  assert.equal(code, 0, `writeguard exits on SIGTERM within ${WAIT_MS} ms: ${wg.stderr()}`);
}

test('from the CLI, OTEL_EXPORTER_OTLP_ENDPOINT turns tracing on, OTEL_SERVICE_NAME names it, and SIGTERM flushes the spans', async () => {
  const up = await startUpstream();
  try {
    // A batch delay of ten minutes: only the shutdown's flush can deliver these spans in time.
    const wg = launch(up, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: 'agent-sidecar',
      OTEL_BSP_SCHEDULE_DELAY: '600000',
    });
    const { listen } = await wg.ready;
    const traceId = 'c'.repeat(32);
    const res = await write(listen[0]!, { 'idempotency-key': 'otel-cli-on', traceparent: `00-${traceId}-${'d'.repeat(16)}-01` });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
    assert.equal(parentOf(up.received[0]!.headers.traceparent).traceId, traceId);
    assert.equal((await lastLine(wg, 1)).trace_id, traceId);
    assert.equal(receiver.spans.filter((s) => s.traceId === traceId).length, 0, 'nothing exported before the shutdown');
    await stopped(wg);
    const { server, clients } = await traceOf(traceId);
    assert.equal(clients.length, 1);
    assert.equal(server.resource['service.name'], 'agent-sidecar');
  } finally {
    await up.close();
  }
});

test("from the CLI without the env var: nothing reaches the receiver, the line has no trace_id, the agent's traceparent goes upstream untouched", async () => {
  const up = await startUpstream();
  try {
    const before = receiver.requests.length;
    const wg = launch(up, {});
    const { listen } = await wg.ready;
    const traceparent = `00-${'e'.repeat(32)}-${'f'.repeat(16)}-01`;
    const res = await write(listen[0]!, { 'idempotency-key': 'otel-cli-off', traceparent, tracestate: 'vendor=kept' });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
    const line = await lastLine(wg, 1);
    assert.equal(line.outcome, 'forwarded');
    assert.ok(!('trace_id' in line) && !('span_id' in line), JSON.stringify(line));
    assert.deepEqual([up.received[0]!.headers.traceparent, up.received[0]!.headers.tracestate], [traceparent, 'vendor=kept']);
    await stopped(wg);
    assert.equal(receiver.requests.length, before, 'no request to the receiver, even at shutdown');
  } finally {
    await up.close();
  }
});

test('a collector that cannot be reached costs the agent nothing: the write goes through, the shutdown is clean and says so', async () => {
  const up = await startUpstream();
  try {
    const wg = launch(up, { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await freePort()}`, OTEL_BSP_SCHEDULE_DELAY: '600000' });
    const { listen } = await wg.ready;
    const res = await write(listen[0]!, { 'idempotency-key': 'otel-no-collector' });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
    assert.equal(up.count(), 1);
    await stopped(wg);
    const warned = wg.logs.lines.filter((l) => l.level === 'warn' && l.msg.startsWith('tracing:'));
    assert.equal(warned.length, 1, JSON.stringify(wg.logs.lines.filter((l) => l.level !== 'info')));
    // The exporter retries a refused connection with backoff for longer than the shutdown waits.
    assert.equal(warned[0]!.msg, 'tracing: spans not exported by shutdown were dropped');
  } finally {
    await up.close();
  }
});
