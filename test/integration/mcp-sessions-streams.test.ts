// MCP sessions and event streams through writeguard (DESIGN §11), with @modelcontextprotocol/sdk's own
// client and a stateful SDK server (`Mcp-Session-Id`): the session id passes through untouched and a
// protected call joins across sessions of one agent; DELETE reaches the server; a notification on the
// standalone GET stream arrives while the stream stays open; a tool call answered as an event stream
// outlives the upstream's timeoutMs while events flow, and one that goes silent past it ends as
// outcome_unknown; an idle GET stream's head reaches the client at once. Every claim is counted at
// the server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { LATEST_PROTOCOL_VERSION, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { BOTH, connectClient, metaOf, textOf } from '../helpers/mcp-client.js';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.js';
import { eventually } from '../helpers/wait.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const CALL = { timeout: 5000 };
/** The slow upstream's timeoutMs: a watched event stream's deadline, per chunk. */
const TIMEOUT_MS = 600;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('MCP sessions and event streams through writeguard (stateful SDK server)', () => {
  let mcp: TestMcpServer;
  let wg: RunningWriteguard;
  const clients: Client[] = [];
  const ran = (tool: string) => mcp.executions.get(tool) ?? 0;
  const http = (method: string) => mcp.httpRequests.get(method) ?? 0;
  const sessionOf = (client: Client) => (client.transport as StreamableHTTPClientTransport).sessionId;
  const connect = async (prefix: '/mcp' | '/slow') => {
    const client = await connectClient(`${wg.url}${prefix}`);
    clients.push(client);
    return client;
  };

  before(async () => {
    mcp = await startMcpServer({ json: false, stateful: true, slowPayment: true });
    wg = await startWriteguard({
      upstreams: [
        { name: 'pay-mcp', prefix: '/mcp', target: mcp.url, mcp: { tools: { create_payment: { key: 'arguments.idempotency_key' } } } },
        {
          name: 'slow-mcp',
          prefix: '/slow',
          target: mcp.url,
          timeoutMs: TIMEOUT_MS,
          idempotency: { leaseMs: 5000 },
          mcp: { tools: { slow_payment: { key: 'arguments.idempotency_key' } } },
        },
      ],
    });
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await wg?.close();
    await mcp?.close();
  });

  test('each client gets its own session id, untouched; a call repeated from another session of the agent joins the first; DELETE reaches the server', async () => {
    const initializes = mcp.requests.get('initialize') ?? 0;
    const lists = mcp.requests.get('tools/list') ?? 0;
    const a = await connect('/mcp');
    const sessionA = sessionOf(a);
    assert.match(sessionA ?? '', UUID, 'initialize answered with the session id the server made');
    assert.ok(mcp.sessions.has(sessionA!), 'the id the client holds is the one the server issued');

    const tools = await a.listTools(undefined, CALL);
    assert.ok(tools.tools.some((t) => t.name === 'create_payment'));
    assert.equal(mcp.requests.get('tools/list'), lists + 1, 'tools/list reached the server in that session');

    const args = { amount: '42.00', currency: 'usd', recipient: 'acct_sessions' };
    const before = ran('create_payment');
    const first = await a.callTool({ name: 'create_payment', arguments: args }, undefined, CALL);
    assert.equal(first.isError, undefined);
    assert.equal(metaOf(first, 'replayed'), undefined);
    assert.equal(ran('create_payment'), before + 1);

    // Another session of the same agent: the scope is the agent, not the session.
    const b = await connect('/mcp');
    const sessionB = sessionOf(b);
    assert.match(sessionB ?? '', UUID);
    assert.notEqual(sessionB, sessionA);
    assert.equal(mcp.requests.get('initialize'), initializes + 2, 'one initialize per client');
    const again = await b.callTool({ name: 'create_payment', arguments: args }, undefined, CALL);
    assert.equal(textOf(again), textOf(first));
    assert.equal(metaOf(again, 'replayed'), true);
    assert.equal(ran('create_payment'), before + 1, 'one execution across both sessions');

    // Ending the session: the DELETE reaches the server, which closes that session only.
    const deletes = http('DELETE');
    await (a.transport as StreamableHTTPClientTransport).terminateSession();
    assert.equal(http('DELETE'), deletes + 1);
    assert.equal(mcp.sessions.has(sessionA!), false, 'the server closed the session');
    assert.equal(mcp.sessions.has(sessionB!), true);
  });

  test('a notification the server sends on the standalone GET stream reaches the client while that stream stays open', async () => {
    const client = await connect('/mcp');
    const session = sessionOf(client)!;
    const arrived: number[] = [];
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void arrived.push(Date.now()));
    // The client opens the GET stream after initializing; wait until the server has answered it.
    const opened = () => mcp.streams.filter((s) => s.session === session);
    await eventually(() => opened().some((s) => s.res.headersSent && !s.res.writableEnded), 3000, {
      what: 'the GET stream',
      intervalMs: 10,
    });
    const stream = opened()[0]!.res;

    for (const n of [1, 2]) {
      const sentAt = Date.now();
      mcp.sessions.get(session)!.sendToolListChanged();
      await eventually(() => arrived.length === n, 2000, { what: `notification ${n} at the client`, intervalMs: 5 });
      assert.ok(arrived[n - 1]! - sentAt < 1000, `notification ${n} relayed as it came (${arrived[n - 1]! - sentAt} ms)`);
      assert.equal(stream.writableEnded || stream.destroyed, false, 'the GET stream is still open');
    }
    assert.equal(opened().length, 1, 'both came on the one GET stream (no reconnect)');
  });

  test(`a call answered as an event stream that outlasts timeoutMs (${TIMEOUT_MS} ms) while progress flows completes; a repeat replays`, async () => {
    const client = await connect('/slow');
    const args = { amount: '7.00', recipient: 'acct_long', steps: 8, interval_ms: 200 };
    const before = ran('slow_payment');
    const progress: Array<{ at: number; progress: number }> = [];
    const startedAt = Date.now();
    const result = await client.callTool({ name: 'slow_payment', arguments: args }, undefined, {
      ...CALL,
      onprogress: (p) => void progress.push({ at: Date.now(), progress: p.progress }),
    });
    const doneAt = Date.now();
    assert.equal(result.isError, undefined, textOf(result));
    assert.match(textOf(result), /^paid 7\.00 to acct_long/);
    assert.ok(doneAt - startedAt > 2 * TIMEOUT_MS, `the call lasted ${doneAt - startedAt} ms, past timeoutMs`);
    assert.deepEqual(
      progress.map((p) => p.progress),
      [1, 2, 3, 4, 5, 6, 7, 8],
      'every progress notification, in order',
    );
    // Relayed as they came: the first long before the result, spread over the call (not flushed at the end).
    assert.ok(doneAt - progress[0]!.at > 1000, `first progress ${doneAt - progress[0]!.at} ms before the result`);
    assert.ok(progress.at(-1)!.at - progress[0]!.at > 1000, `progress spread over ${progress.at(-1)!.at - progress[0]!.at} ms`);
    assert.equal(ran('slow_payment'), before + 1);

    const repeat = await client.callTool({ name: 'slow_payment', arguments: args }, undefined, {
      ...CALL,
      onprogress: () => void progress.push({ at: Date.now(), progress: -1 }),
    });
    assert.equal(textOf(repeat), textOf(result));
    assert.equal(metaOf(repeat, 'replayed'), true);
    assert.equal(progress.length, 8, 'a replay sends no progress');
    assert.equal(ran('slow_payment'), before + 1);
  });

  test(`the same call whose server then goes silent past timeoutMs ends as outcome_unknown; a repeat never runs again`, async () => {
    const client = await connect('/slow');
    const args = { amount: '8.00', recipient: 'acct_silent', steps: 3, interval_ms: 200, silence_ms: 5 * TIMEOUT_MS };
    const before = ran('slow_payment');
    const seen: string[] = [];
    const startedAt = Date.now();
    const first = await client.callTool({ name: 'slow_payment', arguments: args }, undefined, {
      ...CALL,
      onprogress: (p) => void seen.push(`progress ${p.progress}`),
    });
    const elapsed = Date.now() - startedAt;
    seen.push(`result ${String(metaOf(first, 'code'))}`);
    assert.equal(first.isError, true);
    assert.deepEqual(seen, ['progress 1', 'progress 2', 'progress 3', 'result outcome_unknown']);
    assert.match(textOf(first), /Do not call it again/);
    // Cut timeoutMs after the last event, long before the server would have answered.
    assert.ok(elapsed >= 400 + TIMEOUT_MS && elapsed < 400 + args.silence_ms, `ended after ${elapsed} ms`);
    assert.equal(ran('slow_payment'), before + 1);

    const again = await client.callTool({ name: 'slow_payment', arguments: args }, undefined, CALL);
    assert.equal(again.isError, true);
    assert.equal(metaOf(again, 'code'), 'outcome_unknown');
    assert.equal(ran('slow_payment'), before + 1, 'never a second execution');
    const lines = (await wg.logs.waitForResponses(1)).filter((l) => l.code === 'outcome_unknown' && l.upstream === 'slow-mcp');
    assert.ok(lines.length >= 2, `both calls logged with code outcome_unknown: ${JSON.stringify(lines)}`);
  });

  test('an idle GET event stream: its head reaches the client at once, and idling past timeoutMs is no internal error', async () => {
    const url = `${wg.url}/slow`;
    const initialize = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    };
    const init = await fetch(url, {
      method: 'POST',
      headers: { accept: BOTH, 'content-type': 'application/json' },
      body: JSON.stringify(initialize),
      signal: AbortSignal.timeout(5000),
    });
    await init.text();
    const session = init.headers.get('mcp-session-id') ?? '';
    assert.match(session, UUID);
    const internalErrors = () => wg.logs.lines.filter((l) => l.msg === 'internal error').length;
    const errorsBefore = internalErrors();

    const startedAt = Date.now();
    const stream = await fetch(url, {
      headers: { accept: 'text/event-stream', 'mcp-session-id': session },
      signal: AbortSignal.timeout(5000),
    });
    const headAfterMs = Date.now() - startedAt;
    assert.equal(mcp.streams.filter((s) => s.session === session).length, 1, 'the GET reached the server');
    // The server sends nothing on it (no event, no keep-alive within this wait): idle past timeoutMs.
    await sleep(Math.max(0, 3 * TIMEOUT_MS - (Date.now() - startedAt)));
    await stream.body?.cancel().catch(() => undefined);
    assert.deepEqual(
      {
        status: stream.status,
        contentType: stream.headers.get('content-type'),
        headBeforeTimeout: headAfterMs < TIMEOUT_MS,
        internalErrors: internalErrors() - errorsBefore,
      },
      { status: 200, contentType: 'text/event-stream', headBeforeTimeout: true, internalErrors: 0 },
      `the stream's head came after ${headAfterMs} ms`,
    );
  });
});
