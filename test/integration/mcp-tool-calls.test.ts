// MCP tool calls, exactly once (DESIGN §11), with @modelcontextprotocol/sdk's own client and server,
// the server answering as JSON and as an event stream: a call whose answer was lost is never run
// again, a re-issued call (new JSON-RPC id, reworded free text) joins the first and gets its result,
// a new key argument value runs, a call still running is an isError result, unprotected calls pass
// through. Every claim is counted at the server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { BOTH, connectClient, metaOf, rawPost, textOf, toolsCall } from '../helpers/mcp-client.js';
import { startMcpServer, type TestMcpServer } from '../helpers/mcp-server.js';
import { until } from '../helpers/wait.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

const CALL = { timeout: 5000 };

for (const json of [true, false]) {
  describe(`MCP tool calls, server answering ${json ? 'JSON' : 'an event stream'}`, () => {
    let mcp: TestMcpServer;
    let wg: RunningWriteguard;
    let client: Client;
    let n = 0;
    /** create_payment arguments of an intent no other test uses. */
    const payment = (over: Record<string, unknown> = {}) => ({
      amount: `${json ? 1 : 2}${++n}.00`,
      currency: 'usd',
      recipient: `acct_${n}`,
      memo: 'for the order',
      ...over,
    });
    const ran = (tool = 'create_payment') => mcp.executions.get(tool) ?? 0;
    const pay = (args: Record<string, unknown>) => client.callTool({ name: 'create_payment', arguments: args }, undefined, CALL);

    before(async () => {
      mcp = await startMcpServer({ json });
      wg = await startWriteguard({
        upstreams: [
          {
            name: 'pay-mcp',
            prefix: '/mcp',
            target: mcp.url,
            timeoutMs: 5000,
            mcp: {
              tools: {
                create_payment: {
                  key: 'arguments.idempotency_key',
                  intent: ['arguments.amount', 'arguments.currency', 'arguments.recipient'],
                },
                refund_payment: {},
              },
            },
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

    test('executed, then the connection drops before the answer: outcome_unknown, and the re-issued call never runs again', async () => {
      const args = payment();
      const before = ran();
      mcp.afterExecute = (res) => void res.socket?.destroy();
      let first;
      try {
        first = await pay(args);
      } finally {
        mcp.afterExecute = null;
      }
      assert.equal(ran(), before + 1, 'the server executed the call once');
      assert.equal(first.isError, true);
      assert.equal(metaOf(first, 'code'), 'outcome_unknown');
      assert.match(textOf(first), /Do not call it again/);

      // The agent calls again (the SDK gives it a new JSON-RPC id), the server now answering normally.
      const again = await pay(args);
      assert.equal(ran(), before + 1, 'never a second execution');
      assert.equal(again.isError, true);
      assert.equal(metaOf(again, 'code'), 'outcome_unknown');
      const lines = (await wg.logs.waitForResponses(1)).filter((l) => l.code === 'outcome_unknown' && l.method === 'POST');
      assert.ok(lines.length >= 2, `both calls logged with code outcome_unknown: ${JSON.stringify(lines)}`);
    });

    test('dropped after a progress event was relayed: the refusal ends the same answer, and the repeat never runs', async () => {
      const args = payment();
      const before = ran();
      const seen: string[] = [];
      const call = () =>
        client.callTool({ name: 'create_payment', arguments: args }, undefined, { ...CALL, onprogress: () => seen.push('progress') });
      mcp.afterExecute = async (res) => {
        // In event-stream mode, until the progress event reached the agent (a JSON answer drops it).
        await until(() => seen.length > 0, { timeoutMs: json ? 100 : 2000, intervalMs: 10 });
        res.socket?.destroy();
      };
      let first;
      try {
        first = await call();
      } finally {
        mcp.afterExecute = null;
      }
      seen.push(`result ${String(metaOf(first, 'code'))}`);
      assert.equal(first.isError, true);
      assert.deepEqual(seen, json ? ['result outcome_unknown'] : ['progress', 'result outcome_unknown']);
      const again = await call();
      assert.equal(metaOf(again, 'code'), 'outcome_unknown');
      assert.equal(ran(), before + 1);
    });

    test('a completed call re-issued, or reworded in free text, joins it: the stored result, replayed; a new key argument value runs', async () => {
      const args = payment();
      const before = ran();
      const keysBefore = mcp.keys.length;
      const first = await pay(args);
      assert.equal(first.isError, undefined);
      assert.match(textOf(first), new RegExp(`^paid ${args.amount} usd to ${args.recipient}`));
      assert.equal(metaOf(first, 'replayed'), undefined);
      assert.equal(ran(), before + 1);

      const again = await pay(args);
      assert.equal(textOf(again), textOf(first));
      assert.equal(metaOf(again, 'replayed'), true);
      const reworded = await pay({ ...args, memo: 'paying for the order we discussed' });
      assert.equal(textOf(reworded), textOf(first));
      assert.equal(metaOf(reworded, 'replayed'), true);
      assert.equal(ran(), before + 1, 'one execution for the call, its repeat and its rewording');

      // The server saw writeguard's upstream key, in the key argument and the Idempotency-Key header.
      const seen = mcp.keys[keysBefore]!;
      assert.equal(typeof seen.argument, 'string');
      assert.notEqual(seen.argument, '');
      assert.equal(seen.argument, seen.header);

      const second = await pay({ ...args, idempotency_key: `deliberate-${json}-${n}` });
      assert.equal(second.isError, undefined);
      assert.equal(metaOf(second, 'replayed'), undefined);
      assert.notEqual(textOf(second), textOf(first));
      assert.equal(ran(), before + 2, 'a new key argument value is a deliberate second call');
    });

    test('raw JSON-RPC: a replay answers under the new id with Idempotent-Replayed; to an event-stream-only caller as one event', async () => {
      const url = `${wg.url}/mcp`;
      const args = payment();
      const before = ran();
      const first = await rawPost(url, toolsCall(101, 'create_payment', args));
      assert.equal(first.status, 200, first.text);
      assert.equal(first.headers.get('idempotent-replayed'), null);
      const original = first.messages.at(-1) as { id: number; result: { content: unknown } };
      assert.equal(original.id, 101);

      const replay = await rawPost(url, toolsCall(102, 'create_payment', args));
      assert.equal(replay.status, 200, replay.text);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.match(replay.contentType, /application\/json/);
      const replayed = replay.messages[0] as { id: number; result: { content: unknown; _meta: Record<string, unknown> } };
      assert.equal(replayed.id, 102);
      assert.deepEqual(replayed.result.content, original.result.content);
      assert.equal(replayed.result._meta['io.writeguard/replayed'], true);

      const sse = await rawPost(url, toolsCall(103, 'create_payment', args), 'text/event-stream');
      assert.equal(sse.status, 200, sse.text);
      assert.equal(sse.headers.get('idempotent-replayed'), 'true');
      assert.match(sse.contentType, /^text\/event-stream/);
      assert.equal(sse.messages.length, 1, sse.text);
      const event = sse.messages[0] as { id: number; result: { content: unknown } };
      assert.equal(event.id, 103);
      assert.deepEqual(event.result.content, original.result.content);
      assert.equal(ran(), before + 1);
    });

    test('get_balance and tools/list are not protected: they pass through and run each time', async () => {
      const balances = ran('get_balance');
      const lists = mcp.requests.get('tools/list') ?? 0;
      const a = await client.callTool({ name: 'get_balance', arguments: {} }, undefined, CALL);
      const b = await client.callTool({ name: 'get_balance', arguments: {} }, undefined, CALL);
      assert.equal(textOf(a), `balance read ${balances + 1}`);
      assert.equal(textOf(b), `balance read ${balances + 2}`);
      assert.equal(metaOf(b, 'replayed'), undefined);
      assert.equal(ran('get_balance'), balances + 2);
      const tools = await client.listTools(undefined, CALL);
      await client.listTools(undefined, CALL);
      assert.deepEqual(tools.tools.map((t) => t.name).sort(), ['create_payment', 'get_balance', 'refund_payment']);
      assert.equal(mcp.requests.get('tools/list'), lists + 2);
      // A raw repeat of the same unprotected call, same id: run again, never replayed.
      const raw = await rawPost(`${wg.url}/mcp`, toolsCall(7, 'get_balance', {}));
      assert.equal(raw.headers.get('idempotent-replayed'), null);
      assert.equal(ran('get_balance'), balances + 3);
    });

    test('a progress notification sent before the result reaches onprogress first (event stream); a repeat with a new token joins', async () => {
      const args = payment();
      const before = ran();
      const seen: string[] = [];
      const result = await client.callTool({ name: 'create_payment', arguments: args }, undefined, {
        ...CALL,
        onprogress: (p) => seen.push(`progress ${p.progress}/${p.total}`),
      });
      seen.push('result');
      assert.equal(result.isError, undefined);
      assert.equal(ran(), before + 1);
      // A JSON answer has no room for notifications (the SDK server drops them); an event stream relays them as they come.
      assert.deepEqual(seen, json ? ['result'] : ['progress 1/2', 'result']);
      // The progress token is not part of the call: a repeat with a new one joins it.
      const repeat = await client.callTool({ name: 'create_payment', arguments: args }, undefined, {
        ...CALL,
        onprogress: () => seen.push('late'),
      });
      assert.equal(textOf(repeat), textOf(result));
      assert.equal(metaOf(repeat, 'replayed'), true);
      assert.deepEqual(seen, json ? ['result'] : ['progress 1/2', 'result'], 'a replay sends no progress');
      assert.equal(ran(), before + 1);
    });

    test('a repeat of a call still running gets an isError result "still running"; once done, a repeat gets its result', async () => {
      const args = payment();
      const before = ran();
      mcp.afterExecute = () => sleep(800);
      let first;
      let repeat;
      try {
        const running = pay(args);
        const deadline = Date.now() + 3000;
        while (ran() === before && Date.now() < deadline) await sleep(10);
        assert.equal(ran(), before + 1, 'the first call is executing');
        repeat = await pay(args);
        first = await running;
      } finally {
        mcp.afterExecute = null;
      }
      assert.equal(first.isError, undefined);
      assert.equal(repeat.isError, true);
      assert.equal(metaOf(repeat, 'code'), 'idempotency_key_in_use');
      assert.match(textOf(repeat), /still running/);
      const later = await pay(args);
      assert.equal(textOf(later), textOf(first));
      assert.equal(metaOf(later, 'replayed'), true);
      assert.equal(ran(), before + 1);
    });

    test('a JSON-RPC batch holding a protected call is refused whole as a JSON-RPC error (400): nothing runs', async () => {
      const before = ran();
      const balances = ran('get_balance');
      const calls = mcp.requests.get('tools/call') ?? 0;
      const res = await rawPost(`${wg.url}/mcp`, [toolsCall(1, 'get_balance', {}), toolsCall(2, 'create_payment', payment())], BOTH);
      assert.equal(res.status, 400, res.text);
      const message = res.messages[0] as { id: unknown; error: { code: number; message: string } };
      assert.equal(message.id, null);
      assert.equal(message.error.code, -32600);
      assert.match(message.error.message, /batch/);
      assert.equal(ran(), before);
      assert.equal(ran('get_balance'), balances);
      assert.equal(mcp.requests.get('tools/call') ?? 0, calls, 'nothing reached the server');
    });
  });
}
