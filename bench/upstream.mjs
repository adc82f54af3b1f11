// The bench's upstream: as cheap as node:http allows, so the contenders in front of it are what
// is measured. Answers are serialised once at start; only the request id changes per answer
// (real payment APIs send one, and it decides whether writeguard reads the body of a read).
//
//   GET  /v1/items     → 200, small JSON
//   POST /v1/payments  → 201, 1 KiB JSON (after POST_DELAY_MS, for the in-flight memory check)
//   GET  /__count      → {"get":n,"post":n}: what reached the upstream, so replays can be proven free
//
// Env: PORT (required), POST_DELAY_MS (default 0).
import { createServer } from 'node:http';

const port = Number(process.env.PORT);
const postDelayMs = Number(process.env.POST_DELAY_MS ?? 0);

const ITEMS = Buffer.from(
  JSON.stringify({
    object: 'list',
    data: [
      { id: 'item_1', name: 'widget', price: 1250 },
      { id: 'item_2', name: 'gadget', price: 990 },
    ],
  }),
);
const PAYMENT = (() => {
  const base = { id: 'pay_0001', object: 'payment', amount: 1250, currency: 'eur', status: 'succeeded', metadata: {} };
  // Pad to exactly 1 KiB so every contender moves the same bytes.
  const pad = 1024 - Buffer.byteLength(JSON.stringify({ ...base, description: '' }));
  return Buffer.from(JSON.stringify({ ...base, description: 'x'.repeat(pad) }));
})();

const counts = { get: 0, post: 0 };
let seq = 0;

function answer(res, status, body) {
  res.writeHead(status, ['content-type', 'application/json', 'content-length', String(body.length), 'request-id', `req_${++seq}`]);
  res.end(body);
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/v1/items') {
    counts.get++;
    return answer(res, 200, ITEMS);
  }
  if (req.method === 'POST' && req.url === '/v1/payments') {
    counts.post++;
    // Read the whole body (the contenders send it), then answer.
    req.on('data', () => {});
    req.on('end', () => (postDelayMs > 0 ? setTimeout(() => answer(res, 201, PAYMENT), postDelayMs) : answer(res, 201, PAYMENT)));
    return;
  }
  if (req.method === 'GET' && req.url === '/__count') return answer(res, 200, Buffer.from(JSON.stringify(counts)));
  answer(res, 404, Buffer.from('{"error":{"code":"not_found"}}'));
});
// Node's 5 s default would drop keep-alive sockets the proxies' pools still hold between runs.
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)).closeAllConnections());
