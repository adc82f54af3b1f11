// An alert webhook that hangs: it accepts the connection, reads the whole request and never
// answers — the receiver a sender must not wait for. Started by the bench like the upstream,
// pinned to the server core, stopped by PID.
//
//   any request but the one below  → read to the end, counted, never answered
//   GET /__count                   → {"received":n,"answered":n,"abandoned":n}: what it got, what it
//                                    answered (0 unless this file is wrong), and how many requests
//                                    the sender gave up on (closed the connection unanswered)
//
// Env: PORT (required).
import { createServer } from 'node:http';

const port = Number(process.env.PORT);
const counts = { received: 0, answered: 0, abandoned: 0 };

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/__count') {
    const body = Buffer.from(JSON.stringify(counts));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
    res.end(body);
    return;
  }
  req.on('data', () => {});
  req.on('end', () => counts.received++);
  // Counted, not assumed: nothing here writes an answer, so 'finish' never fires.
  res.on('finish', () => counts.answered++);
  res.on('close', () => {
    if (!res.writableFinished) counts.abandoned++;
  });
});
// No time limit of ours on an unanswered request: the sender's own timeout is what ends it.
server.requestTimeout = 0;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});
