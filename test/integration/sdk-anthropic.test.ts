// SDK guide, @anthropic-ai/sdk: baseURL is writeguard's origin (the SDK adds /v1/…). A message is a
// model call, a POST that reads: passthrough. Creating a message batch is a write: protected by a
// derived key. Like openai-node (both are Stainless SDKs) it retries twice by default on timeouts,
// 408, 409, 429, 5xx (529 overloaded included) and `x-should-retry: true`, never on
// `x-should-retry: false`; it honours retry-after-ms / Retry-After, marks every retry with
// X-Stainless-Retry-Count, and sends no Idempotency-Key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { behindWriteguard } from '../helpers/behind-writeguard.js';
import type { Responder } from '../helpers/upstream.js';

const SLOW_MS = 900;

const anthropicApi: Responder = (req, res) => {
  const json = (body: unknown, delayMs = 0): void => {
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json', 'request-id': `req_${Math.random().toString(36).slice(2, 10)}` });
      res.end(JSON.stringify(body));
    }, delayMs);
  };
  if (req.url === '/v1/messages') {
    return json({
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      model: 'claude-sonnet-4-5',
      stop_reason: 'end_turn',
      stop_sequence: null,
      content: [{ type: 'text', text: 'Hello!' }],
      usage: { input_tokens: 5, output_tokens: 2 },
    });
  }
  if (req.url === '/v1/messages/batches') {
    return json(
      {
        id: 'msgbatch_1',
        type: 'message_batch',
        processing_status: 'in_progress',
        request_counts: { processing: 1, succeeded: 0, errored: 0, canceled: 0, expired: 0 },
      },
      SLOW_MS,
    );
  }
  res
    .writeHead(404, { 'content-type': 'application/json' })
    .end('{"type":"error","error":{"type":"not_found_error","message":"not found"}}');
};

const anthropicBehindWriteguard = behindWriteguard(anthropicApi, {
  name: 'anthropic',
  prefix: '/',
  routes: [
    { match: 'POST /v1/messages', mode: 'passthrough' },
    { match: 'POST /v1/messages/count_tokens', mode: 'passthrough' },
  ],
});

test('messages.create streams through (passthrough): one call, one upstream request, credentials forwarded', async () => {
  const { up, wg } = anthropicBehindWriteguard;
  const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: wg.url });
  const message = await anthropic.messages.create({
    model: 'claude-sonnet-4-5',
    max_tokens: 256,
    messages: [{ role: 'user', content: 'Say hello' }],
  });

  assert.deepEqual(message.content, [{ type: 'text', text: 'Hello!' }]);
  assert.equal(up.count('/v1/messages'), 1);
  const sent = up.received.at(-1)!;
  // The credential goes through untouched (this SDK version sends it as a bearer token, older ones as x-api-key).
  assert.ok([sent.headers['x-api-key'], sent.headers.authorization].some((v) => String(v).includes('sk-ant-test')));
  assert.equal(sent.headers['idempotency-key'], undefined, 'a read gets no key');
});

test('messages.batches.create: the SDK times out and retries; writeguard joins the retries → one batch', async () => {
  const { up, wg } = anthropicBehindWriteguard;
  // timeout only shortened so the slow fake upstream makes the SDK retry; keep the default in real use.
  const anthropic = new Anthropic({ apiKey: 'sk-ant-test', baseURL: wg.url, timeout: 300, maxRetries: 5 });
  const batch = await anthropic.messages.batches.create({
    requests: [{ custom_id: 'q1', params: { model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Hi' }] } }],
  });

  assert.equal(batch.id, 'msgbatch_1');
  assert.equal(up.count('/v1/messages/batches'), 1);
  const lines = (await wg.logs.waitForResponses(2)).filter((l) => l.path === '/v1/messages/batches');
  assert.ok(lines.length >= 2, 'the SDK did retry');
  assert.ok(lines.some((l) => l.outcome === 'replayed'));
});
