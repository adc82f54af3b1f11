// The demo's payments API for docker-compose.yml: POST answers 201 with a JSON "charge", anything else
// 200; every response carries a `request-id` header. With FLAKY=1 it misbehaves the way real APIs do,
// on a fixed pattern so the effect is easy to see: every 5th POST gets a 429 (nothing ran), every 7th
// runs and then answers 503 (a load balancer's answer after the backend ran).
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';

const port = Number(process.env.PORT ?? 9000);
const flaky = process.env.FLAKY === '1';
let posts = 0;
let charges = 0;

const server = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (body += chunk));
  req.on('end', () => {
    const requestId = randomUUID();
    const isPost = req.method === 'POST';
    const n = isPost ? ++posts : 0;
    const reply = (status, payload, headers = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': requestId, ...headers });
      res.end(JSON.stringify(payload));
      console.log(`${req.method} ${req.url} -> ${status} ${requestId} (charges so far: ${charges})`);
    };
    if (flaky && n % 5 === 0) return reply(429, { error: { code: 'rate_limited' } }, { 'retry-after': '1' });
    if (isPost) charges++;
    if (flaky && n % 7 === 0) return reply(503, { error: { code: 'service_unavailable' } });
    if (isPost) return reply(201, { id: `ch_${requestId.slice(0, 8)}`, object: 'charge', status: 'succeeded', received: body });
    reply(200, { ok: true, method: req.method, path: req.url, charges });
  });
});

server.listen(port, '0.0.0.0', () => console.log(`example upstream listening on :${port}${flaky ? ' (flaky)' : ''}`));

// As PID 1 Node ignores SIGTERM unless handled; stop promptly on `docker compose down`.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
