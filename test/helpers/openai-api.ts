// A loopback upstream that answers like the OpenAI API, for the SDK tests: chat completions at once;
// batch and file creation after `slowMs` (900 ms by default: slower than the 300 ms timeout the tests
// give the SDK, so it gives up on its first attempt and retries). Anything else is a 404.
import type { Responder } from './upstream.js';

export const OPENAI_SLOW_MS = 900;

export function openaiApi(slowMs = OPENAI_SLOW_MS): Responder {
  return (req, res) => {
    const json = (body: unknown, delayMs = 0): void => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': `req_${Math.random().toString(36).slice(2, 10)}` });
        res.end(JSON.stringify(body));
      }, delayMs);
    };
    if (req.url === '/v1/chat/completions') {
      return json({
        id: 'chatcmpl-1',
        object: 'chat.completion',
        created: 1,
        model: 'gpt-4o-mini',
        choices: [{ index: 0, finish_reason: 'stop', logprobs: null, message: { role: 'assistant', content: 'Hi!', refusal: null } }],
        usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
      });
    }
    if (req.url === '/v1/batches') {
      return json(
        {
          id: 'batch_1',
          object: 'batch',
          endpoint: '/v1/chat/completions',
          input_file_id: 'file_1',
          completion_window: '24h',
          status: 'validating',
          created_at: 1,
        },
        slowMs,
      );
    }
    if (req.url === '/v1/files') {
      return json({ id: 'file_1', object: 'file', bytes: 3, created_at: 1, filename: 'requests.jsonl', purpose: 'batch' }, slowMs);
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found","type":"invalid_request_error"}}');
  };
}
