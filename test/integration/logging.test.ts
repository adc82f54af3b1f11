// One "response" line per answer, with the request_id and code the agent can act on; no secret ever logged.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { assertProblem } from '../helpers/problem.js';
import { startUpstream, type CountingUpstream, type Responder } from '../helpers/upstream.js';
import { startWriteguard, type LogLine, type RunningWriteguard } from '../helpers/writeguard.js';

const declined = Buffer.from(
  JSON.stringify({ error: { type: 'card_error', code: 'card_declined', message: 'Your card was declined.', request_id: 'req_b' } }),
);

/** Routes by path: each test names the answer it wants. */
const responder: Responder = (req, res) => {
  const path = req.url.split('?')[0];
  if (path === '/v1/with-id') {
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json', 'request-id': 'req_a' });
    res.end(JSON.stringify({ id: 'ch_1', code: 'not-an-error' }));
  } else if (path === '/v1/declined') {
    res.writeHead(400, { 'content-type': 'application/json', 'content-length': declined.length });
    res.end(declined);
  } else if (path === '/v1/declined-chunked') {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.write(declined.subarray(0, 10));
    res.end(declined.subarray(10));
  } else {
    res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  }
};

let up: CountingUpstream;
let wg: RunningWriteguard;
before(async () => {
  up = await startUpstream(responder);
  wg = await startWriteguard({ upstreams: [{ name: 'pay', prefix: '/pay', target: up.url }] });
});
after(async () => {
  await wg?.close();
  await up?.close();
});

/** Sends one request and returns its answer with the one response line it produced. */
async function exchange(path: string, init: RequestInit = {}): Promise<{ res: Response; body: string; line: LogLine }> {
  const before = wg.logs.responses().length;
  const res = await fetch(wg.url + path, init);
  const body = await res.text();
  const lines = await wg.logs.waitForResponses(before + 1);
  await new Promise((r) => setTimeout(r, 20)); // a second line, if any, would show by now
  assert.equal(wg.logs.responses().length, before + 1, 'exactly one response line');
  const line = lines[before]!;
  assert.equal(line.level, 'info', 'levels are labels, as log pipelines expect');
  return { res, body, line };
}

const post = (body: string): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body });

for (const [method, init, status] of [
  ['GET', {}, 200],
  ['POST', post('{"amount":1}'), 201],
] as const) {
  test(`${method} 200-class with a request-id header: that id is logged, code null`, async () => {
    const before = up.count('/v1/with-id');
    const { res, line } = await exchange('/pay/v1/with-id', init);
    assert.equal(res.status, status);
    assert.equal(res.headers.get('request-id'), 'req_a');
    assert.equal(res.headers.get('x-request-id'), null, "the upstream's own id is enough");
    assert.equal(up.count('/v1/with-id'), before + 1);
    assert.equal(line.request_id, 'req_a');
    assert.equal(line.code, null);
    assert.equal(line.status, status);
    assert.equal(line.method, method);
    assert.equal(line.upstream, 'pay');
    assert.equal(line.path, '/pay/v1/with-id');
    assert.equal(line.outcome, 'forwarded');
    assert.equal(typeof line.duration_ms, 'number');
  });

  test(`${method} 400 with a JSON error body: its code and request_id are logged`, async () => {
    const before = up.count('/v1/declined');
    const { res, body, line } = await exchange('/pay/v1/declined', init);
    assert.equal(res.status, 400);
    assert.deepEqual(Buffer.from(body), declined, "the upstream's body reaches the agent unchanged");
    assert.equal(up.count('/v1/declined'), before + 1);
    assert.equal(line.code, 'card_declined');
    assert.equal(line.request_id, 'req_b');
    assert.equal(line.status, 400);
    assert.equal(line.upstream_code, undefined, 'nothing was replaced');
  });

  test(`${method} 400 with a chunked JSON error body (no content-length): its code and request_id are logged`, async () => {
    const before = up.count('/v1/declined-chunked');
    const { res, body, line } = await exchange('/pay/v1/declined-chunked', init);
    assert.equal(res.status, 400);
    assert.deepEqual(Buffer.from(body), declined);
    assert.equal(up.count('/v1/declined-chunked'), before + 1);
    assert.equal(line.code, 'card_declined');
    assert.equal(line.request_id, 'req_b');
  });

  test(`${method} with no upstream request id: writeguard's own id is logged and sent as x-request-id`, async () => {
    const before = up.count('/v1/plain');
    const { res, line } = await exchange('/pay/v1/plain', init);
    assert.equal(res.status, status);
    assert.equal(up.count('/v1/plain'), before + 1);
    const id = res.headers.get('x-request-id');
    assert.ok(id !== null && id.length >= 8, `x-request-id: ${id}`);
    assert.equal(line.request_id, id);
    assert.equal(line.code, null);
  });
}

test("writeguard's own error (no_route): code no_route; request_id is the x-request-id header and the problem's", async () => {
  const before = up.received.length;
  const { res, body, line } = await exchange('/other/v1/x');
  const problem = assertProblem(res, body, 404, 'no_route');
  assert.equal(up.received.length, before, 'the upstream saw nothing');
  const id = res.headers.get('x-request-id');
  assert.ok(id !== null && id !== '');
  assert.equal(problem.request_id, id);
  assert.equal(line.request_id, id);
  assert.equal(line.code, 'no_route');
  assert.equal(line.status, 404);
  assert.equal(line.outcome, 'rejected');
  assert.equal(line.upstream, null);
});

test('secrets are never logged: credentials, cookies, query strings', async () => {
  const secrets = {
    authorization: 'Bearer sk_live_SECRET1',
    'x-api-key': 'SECRET2',
    cookie: 's=SECRET3',
    'x-agent-key': 'SECRET5',
    'proxy-authorization': 'Basic SECRET6',
  };
  const before = up.received.length;
  const paths = ['/pay/v1/plain?token=SECRET4&x=1', '/pay/v1/declined?token=SECRET4', '/other?token=SECRET4'];
  const lines: LogLine[] = [];
  for (const path of paths) {
    lines.push((await exchange(path, { headers: secrets })).line);
    lines.push(
      (await exchange(path, { method: 'POST', headers: { ...secrets, 'content-type': 'application/json' }, body: '{"card":"SECRET7"}' }))
        .line,
    );
  }
  assert.equal(up.received.length, before + 4, 'the upstream saw the four requests it routes');
  assert.equal(up.received.at(-1)!.headers.authorization, 'Bearer sk_live_SECRET1', 'credentials are forwarded, just not logged');
  assert.deepEqual(
    lines.map((l) => l.path),
    ['/pay/v1/plain', '/pay/v1/plain', '/pay/v1/declined', '/pay/v1/declined', '/other', '/other'],
  );
  assert.deepEqual(
    lines.map((l) => l.status),
    [200, 201, 400, 400, 404, 404],
  );
  const text = wg.logs.lines.map((l) => JSON.stringify(l)).join('\n');
  for (const secret of ['SECRET1', 'SECRET2', 'SECRET3', 'SECRET4', 'SECRET5', 'SECRET6', 'SECRET7', 'sk_live_', 'token=']) {
    assert.ok(!text.includes(secret), `${secret} appears in the log`);
  }
});

test('an OpenAI SDK client gets the same result through writeguard as directly, one line per request', async (t) => {
  const completion = {
    id: 'chatcmpl-abc123',
    object: 'chat.completion',
    created: 1_700_000_000,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, message: { role: 'assistant', content: 'Hello there.', refusal: null }, logprobs: null, finish_reason: 'stop' }],
    usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
    system_fingerprint: 'fp_1',
  };
  const ai = await startUpstream((req, res) => {
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      const body = JSON.parse(req.body.toString('utf8')) as { model: string };
      if (body.model === 'no-such-model') {
        res.writeHead(404, { 'content-type': 'application/json', 'x-request-id': 'req_ai_err' });
        res.end(
          JSON.stringify({
            error: { message: 'The model does not exist', type: 'invalid_request_error', param: 'model', code: 'model_not_found' },
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-request-id': 'req_ai_1' });
      res.end(JSON.stringify(completion));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"error":{"message":"not found"}}');
  });
  const aiWg = await startWriteguard({ upstreams: [{ name: 'openai', target: ai.url, allow: ['POST /v1/chat/completions'] }] });
  t.after(async () => {
    await aiWg.close();
    await ai.close();
  });
  const options = { apiKey: 'sk-proj-SECRET8', maxRetries: 0, timeout: 5000 };
  const direct = new OpenAI({ ...options, baseURL: `${ai.url}/v1` });
  const proxied = new OpenAI({ ...options, baseURL: `${aiWg.url}/v1` });
  const params = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'Hi' }] };

  const a = await direct.chat.completions.create(params);
  const b = await proxied.chat.completions.create(params);
  assert.deepEqual(JSON.parse(JSON.stringify(b)), JSON.parse(JSON.stringify(a)));
  assert.deepEqual(JSON.parse(JSON.stringify(b)), completion);
  assert.equal(b._request_id, 'req_ai_1');
  assert.equal(ai.count('/v1/chat/completions'), 2);
  assert.deepEqual(ai.received[1]!.body, ai.received[0]!.body, "the SDK's body reached the upstream unchanged");
  assert.equal(ai.received[1]!.headers.authorization, 'Bearer sk-proj-SECRET8');

  // An upstream error reaches the SDK as the same typed error.
  const failing = { ...params, model: 'no-such-model' };
  const directErr = await direct.chat.completions.create(failing).then(
    () => assert.fail('expected an error'),
    (e: unknown) => e,
  );
  const proxiedErr = await proxied.chat.completions.create(failing).then(
    () => assert.fail('expected an error'),
    (e: unknown) => e,
  );
  assert.ok(proxiedErr instanceof OpenAI.NotFoundError);
  assert.ok(directErr instanceof OpenAI.NotFoundError);
  assert.equal(proxiedErr.status, directErr.status);
  assert.equal(proxiedErr.code, 'model_not_found');
  assert.equal(proxiedErr.message, directErr.message);
  assert.equal(proxiedErr.requestID, 'req_ai_err');
  assert.equal(ai.count('/v1/chat/completions'), 4);

  // writeguard's own error (a route outside the allow-list) reads as a typed API error with its code and message.
  const own = await proxied.models.list().then(
    () => assert.fail('expected an error'),
    (e: unknown) => e,
  );
  assert.ok(own instanceof OpenAI.PermissionDeniedError);
  assert.equal(own.status, 403);
  assert.equal(own.code, 'route_not_allowed');
  assert.match(own.message, /allow-list/);
  assert.equal(ai.received.length, 4, 'the upstream saw nothing more');

  const lines = await aiWg.logs.waitForResponses(3);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(aiWg.logs.responses().length, 3);
  assert.deepEqual(
    lines.map((l) => [l.method, l.path, l.status, l.request_id, l.code]),
    [
      ['POST', '/v1/chat/completions', 200, 'req_ai_1', null],
      ['POST', '/v1/chat/completions', 404, 'req_ai_err', 'model_not_found'],
      ['GET', '/v1/models', 403, own.requestID, 'route_not_allowed'],
    ],
  );
  assert.ok(!aiWg.logs.lines.some((l) => JSON.stringify(l).includes('SECRET8')));
});
