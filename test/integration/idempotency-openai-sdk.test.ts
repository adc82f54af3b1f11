// The real openai SDK, no key, its own retries on, against an upstream slower than the SDK's timeout:
// the SDK retries (X-Stainless-Retry-Count), writeguard joins them to the first attempt — one execution.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { behindWriteguard } from '../helpers/behind-writeguard.js';
import { openaiApi } from '../helpers/openai-api.js';

/** writeguard's defaults (sdk-openai.test.ts runs the same API behind config/openai-compatible.yaml). */
const openai = behindWriteguard(openaiApi(), { name: 'openai' });

test('SDK timeouts and retries against a slow upstream: the write runs once and the SDK gets its result', async () => {
  const { up, wg } = openai;
  const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${wg.url}/v1`, timeout: 300, maxRetries: 6 });
  const batch = await client.batches.create({ input_file_id: 'file_1', endpoint: '/v1/chat/completions', completion_window: '24h' });
  assert.equal(batch.id, 'batch_1');
  assert.equal(up.count('/v1/batches'), 1);
  const lines = await wg.logs.waitForResponses(2);
  const attempts = lines.filter((l) => l.path === '/v1/batches');
  assert.ok(attempts.length >= 2, 'the SDK did retry');
  assert.ok(attempts.some((l) => l.outcome === 'replayed' || l.code === 'idempotency_key_in_use'));
});
