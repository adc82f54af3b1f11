// SDK guide, openai (Node): config/openai-compatible.yaml in front of a loopback upstream that answers
// like the OpenAI API. Completions are passthrough reads; batch and file creation are protected.
// The SDK keeps its own retries (2 by default, on timeouts, 408, 409, 429, 5xx, and whenever
// `x-should-retry: true`); every retry carries X-Stainless-Retry-Count, which lets writeguard join a
// keyless retry to its first attempt. It sends no Idempotency-Key of its own.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { exampleConfig } from '../helpers/example-config.js';
import { openaiApi } from '../helpers/openai-api.js';
import { startUpstream, type CountingUpstream } from '../helpers/upstream.js';
import { startWriteguard, type RunningWriteguard } from '../helpers/writeguard.js';

let up: CountingUpstream;
let wg: RunningWriteguard;

before(async () => {
  up = await startUpstream(openaiApi());
  wg = await startWriteguard(exampleConfig('openai-compatible.yaml', up.url));
});
after(async () => {
  await wg.close();
  await up.close();
});

test('chat completions stream through (passthrough): two identical prompts are two answers, no key', async () => {
  const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${wg.url}/v1` });
  const ask = () => openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Say hi' }] });

  const [first, second] = [await ask(), await ask()];
  assert.equal(first.choices[0]!.message.content, 'Hi!');
  assert.equal(second.choices[0]!.message.content, 'Hi!');
  assert.equal(up.count('/v1/chat/completions'), 2);
  assert.equal(up.received.at(-1)!.headers['idempotency-key'], undefined, 'a read gets no key');
});

test('batches.create: the SDK times out, retries, gets 409 idempotency_key_in_use, retries again → one batch', async () => {
  // timeout only shortened so the slow fake upstream makes the SDK retry; keep the default in real use.
  const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${wg.url}/v1`, timeout: 300, maxRetries: 5 });
  const batch = await openai.batches.create({ input_file_id: 'file_1', endpoint: '/v1/chat/completions', completion_window: '24h' });

  assert.equal(batch.id, 'batch_1');
  assert.equal(up.count('/v1/batches'), 1);
  const lines = (await wg.logs.waitForResponses(1)).filter((l) => l.path === '/v1/batches');
  assert.ok(
    lines.some((l) => l.code === 'idempotency_key_in_use'),
    'the SDK met a 409 in_use and retried it',
  );
  assert.ok(
    lines.some((l) => l.outcome === 'replayed'),
    'and got the stored answer',
  );
});

test('files.create: the SDK re-encodes the upload with a new multipart boundary on each retry; still one file', async () => {
  const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${wg.url}/v1`, timeout: 300, maxRetries: 5 });
  const file = await openai.files.create({ file: await toFile(Buffer.from('{"custom_id":"a"}\n'), 'requests.jsonl'), purpose: 'batch' });

  assert.equal(file.id, 'file_1');
  assert.equal(up.count('/v1/files'), 1);
  const lines = (await wg.logs.waitForResponses(1)).filter((l) => l.path === '/v1/files');
  assert.ok(lines.length >= 2, 'the SDK did retry');
  assert.ok(lines.every((l) => l.key_source === 'derived'));
});

test('an upload with its own Idempotency-Key: a later call with the same key is a replay', async () => {
  const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${wg.url}/v1` });
  const upload = async () =>
    openai.files.create(
      { file: await toFile(Buffer.from('{"custom_id":"b"}\n'), 'requests.jsonl'), purpose: 'batch' },
      { headers: { 'Idempotency-Key': 'upload-2024-06-01' } },
    );
  const already = up.count('/v1/files');

  const [first, again] = [await upload(), await upload()];
  assert.equal(again.id, first.id);
  assert.equal(up.count('/v1/files') - already, 1);
  assert.equal(up.received.at(-1)!.headers['idempotency-key'], 'upload-2024-06-01');
});

test("a raw call under the SDK's base URL: the path is relative to `/v1` (`'/batches'`, not `'/v1/batches'`)", async () => {
  const openai = new OpenAI({ apiKey: 'sk-test', baseURL: `${wg.url}/v1` });
  const body = { input_file_id: 'file_raw', endpoint: '/v1/chat/completions', completion_window: '24h' };
  const already = up.count('/v1/batches');
  const opts = { body, headers: { 'Idempotency-Key': 'raw-batch-1' } };
  const [first, again] = [await openai.post<{ id: string }>('/batches', opts), await openai.post<{ id: string }>('/batches', opts)];
  assert.equal(again.id, first.id);
  assert.equal(up.count('/v1/batches') - already, 1, 'reached /v1/batches once');
  assert.equal(up.count('/v1/v1/batches'), 0);
});
