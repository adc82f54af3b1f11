// The leash on MCP tool calls (DESIGN §10–11), with @modelcontextprotocol/sdk's own client and server
// in JSON and event-stream modes: a budget on arguments.amount and a recipient allow-list refuse a
// call as a tool result an LLM can read (isError, the code in _meta, HTTP 200, logged) before
// anything is sent; other tools are not affected; the server's own answers, isError ones included,
// are definitive and replayed under the new call's id. Counted at the server.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { connectClient, metaOf, rawPost, textOf, toolsCall } from '../helpers/mcp-client.js';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const TOKEN = 'admin-token-0123456789';
const CALL = { timeout: 5000 };
const TOOLS = {
  create_payment: { key: 'arguments.idempotency_key', intent: ['arguments.amount', 'arguments.currency', 'arguments.recipient'] },
  refund_payment: {},
};

for (const json of [true, false]) {
  describe(`the leash on MCP tool calls, server answering ${json ? 'JSON' : 'an event stream'}`, () => {
    let mcp: TestMcpServer;
    let wg: RunningWriteguard;
    let client: Client;
    const ran = (tool = 'create_payment') => mcp.executions.get(tool) ?? 0;
    const call = (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }, undefined, CALL);
    const refusedWith = (result: unknown, code: string) => {
      assert.equal((result as { isError?: boolean }).isError, true, JSON.stringify(result));
      assert.equal(metaOf(result, 'code'), code);
      assert.match(textOf(result), new RegExp(`^writeguard refused this tool call \\(${code}\\)`));
    };
    const logged = async (code: string) => {
      await wg.logs.waitForResponses(1);
      return wg.logs.responses().filter((l) => l.code === code && l.status === 200 && l.outcome === 'rejected').length;
    };

    before(async () => {
      mcp = await startMcpServer({ json });
      wg = await startWriteguard({
        admin: { token: TOKEN },
        budgets: [
          { name: 'daily', match: 'pay-mcp:TOOL create_payment', amount: 'arguments.amount', scale: 2, limit: 5000, period: 'day' },
        ],
        upstreams: [
          {
            name: 'pay-mcp',
            prefix: '/mcp',
            target: mcp.url,
            timeoutMs: 5000,
            policy: [{ match: 'TOOL create_payment', field: 'arguments.recipient', in: ['acct_1'], code: 'recipient_not_allowed' }],
            mcp: { tools: TOOLS },
          },
        ],
      });
      client = await connectClient(`${wg.url}/mcp`);
    });
    after(async () => {
      await client?.close().catch(() => undefined);
      await wg?.close();
      await mcp?.close();
    });

    test('a recipient outside the allow-list: a recipient_not_allowed tool result, nothing sent; an allowed one runs', async () => {
      const before = ran();
      const calls = mcp.requests.get('tools/call') ?? 0;
      const refused = await call('create_payment', { amount: '5.00', currency: 'usd', recipient: 'acct_9' });
      refusedWith(refused, 'recipient_not_allowed');
      assert.equal(ran(), before);
      assert.equal(mcp.requests.get('tools/call') ?? 0, calls, 'nothing reached the server');
      assert.equal(await logged('recipient_not_allowed'), 1);
      const allowed = await call('create_payment', { amount: '5.00', currency: 'usd', recipient: 'acct_1' });
      assert.equal(allowed.isError, undefined, textOf(allowed));
      assert.equal(ran(), before + 1);
    });

    test('a budget on arguments.amount: the second 30.00 against 50.00 is a limit_exceeded tool result, not sent; a repeat of the first is replayed', async () => {
      const before = ran();
      const args = { amount: '30.00', currency: 'usd', recipient: 'acct_1' };
      const first = await call('create_payment', args);
      assert.equal(first.isError, undefined, textOf(first));
      assert.equal(ran(), before + 1);

      const over = await call('create_payment', { ...args, memo: 'second invoice', idempotency_key: `second-${json}` });
      refusedWith(over, 'limit_exceeded');
      assert.equal(ran(), before + 1, 'the refused call never reached the server');
      assert.equal(await logged('limit_exceeded'), 1);

      // The first call's repeat joins it: its stored result, not charged again, not refused.
      const repeat = await call('create_payment', args);
      assert.equal(textOf(repeat), textOf(first));
      assert.equal(metaOf(repeat, 'replayed'), true);
      const res = await fetch(`${wg.adminUrl}/budgets`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        signal: AbortSignal.timeout(5000),
      });
      const row = ((await res.json()) as { budgets: Array<{ budget: string; spent: number; held: number }> }).budgets.find(
        (r) => r.budget === 'daily',
      );
      assert.deepEqual({ spent: row?.spent, held: row?.held }, { spent: 3500, held: 0 }, '5.00 (previous test) + 30.00');
      assert.equal(ran(), before + 1);
    });

    test('refund_payment is not affected by the budget or the allow-list, and is itself protected', async () => {
      const before = ran('refund_payment');
      const a = await call('refund_payment', { payment: `pay_a_${json}`, recipient: 'acct_9' });
      const b = await call('refund_payment', { payment: `pay_b_${json}`, amount: '99.00' });
      assert.equal(textOf(a), `refunded pay_a_${json}`);
      assert.equal(textOf(b), `refunded pay_b_${json}`);
      assert.equal(ran('refund_payment'), before + 2);
      const again = await call('refund_payment', { payment: `pay_a_${json}`, recipient: 'acct_9' });
      assert.equal(textOf(again), textOf(a));
      assert.equal(metaOf(again, 'replayed'), true);
      assert.equal(ran('refund_payment'), before + 2);
    });

    test("the server's own isError result is definitive: a repeat gets it replayed, the server called once", async () => {
      const calls = mcp.requests.get('tools/call') ?? 0;
      const args = { amount: '1.00', recipient: 'acct_1' }; // no currency: the server's input validation refuses it
      const first = await call('create_payment', args);
      assert.equal(first.isError, true);
      assert.equal(metaOf(first, 'code'), undefined, 'not a writeguard refusal');
      const again = await call('create_payment', args);
      assert.equal(textOf(again), textOf(first));
      assert.equal(metaOf(again, 'replayed'), true);
      assert.equal(mcp.requests.get('tools/call'), calls + 1);
    });
  });
}

test('a JSON-RPC error answered with an HTTP error status is replayed under the new call id (DESIGN §11)', async () => {
  // Not the SDK server: one that answers a call's JSON-RPC error with HTTP 400, as some servers do.
  let received = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received++;
      const { id } = JSON.parse(body) as { id: unknown };
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32602, message: 'unknown payment' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const target = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  const wg = await startWriteguard({ upstreams: [{ name: 'pay-mcp', prefix: '/mcp', target, timeoutMs: 5000, mcp: { tools: TOOLS } }] });
  try {
    const first = await rawPost(`${wg.url}/mcp`, toolsCall(1, 'refund_payment', { payment: 'pay_x' }));
    assert.equal((first.messages[0] as { id: unknown }).id, 1);
    const replay = await rawPost(`${wg.url}/mcp`, toolsCall(2, 'refund_payment', { payment: 'pay_x' }));
    assert.equal(received, 1, 'definitive: not sent again');
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    const message = replay.messages[0] as { id: unknown; error: { message: string } };
    assert.equal(message.error.message, 'unknown payment');
    assert.equal(message.id, 2, `the replay answers the new request's id: ${replay.text}`);
  } finally {
    await wg.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('a 4xx that holds no response to the call (session not found) is a transport refusal: passed back, released, never replayed', async () => {
  // A stateful server that has forgotten the session: 404 with no JSON-RPC response, then — once the
  // client has a new session — the call runs. The tool must run once, on the call after the refusal.
  let received = 0;
  let executed = 0;
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      received++;
      const { id } = JSON.parse(body) as { id: unknown };
      if (received === 1) {
        res.writeHead(404, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
      }
      executed++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: `refunded (${executed})` }] } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const target = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
  const wg = await startWriteguard({ upstreams: [{ name: 'pay-mcp', prefix: '/mcp', target, timeoutMs: 5000, mcp: { tools: TOOLS } }] });
  try {
    const refused = await rawPost(`${wg.url}/mcp`, toolsCall(1, 'refund_payment', { payment: 'pay_y' }));
    assert.equal(refused.status, 404, "the server's own refusal reaches the client (its SDK re-initialises on it)");
    assert.equal(received, 1, 'not retried by writeguard: the same request would be refused again');
    const ran = await rawPost(`${wg.url}/mcp`, toolsCall(2, 'refund_payment', { payment: 'pay_y' }));
    assert.equal(ran.headers.get('idempotent-replayed'), null);
    assert.equal((ran.messages[0] as { id: unknown }).id, 2);
    assert.equal(executed, 1);
    const again = await rawPost(`${wg.url}/mcp`, toolsCall(3, 'refund_payment', { payment: 'pay_y' }));
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(executed, 1, 'a repeat of the call that ran joins it');
  } finally {
    await wg.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
