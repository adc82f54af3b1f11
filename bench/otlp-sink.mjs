// An OTLP/HTTP trace receiver that accepts and discards: the collector a traced writeguard exports
// to in the bench. Started like the upstream, pinned to the server core, stopped by PID.
//
//   POST /v1/traces  → read to the end, its spans counted (not parsed: a byte search), 200 {}
//   GET /__count     → {"requests":n,"spans":n,"bytes":n}
//   anything else    → 404
//
// Env: PORT (required).
import { createServer } from 'node:http';

const port = Number(process.env.PORT);
const counts = { requests: 0, spans: 0, bytes: 0 };
// Each span of an OTLP JSON export has one "spanId" key (its parent's is "parentSpanId").
const SPAN_KEY = Buffer.from('"spanId"');

function spansIn(body) {
  let n = 0;
  for (let at = body.indexOf(SPAN_KEY); at !== -1; at = body.indexOf(SPAN_KEY, at + SPAN_KEY.length)) n++;
  return n;
}

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/__count') {
    const body = Buffer.from(JSON.stringify(counts));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
    res.end(body);
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
    const body = Buffer.concat(chunks);
    counts.requests++;
    counts.bytes += body.length;
    counts.spans += spansIn(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
    res.end('{}');
  });
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
