// Contender "fastify floor": what writeguard's stack costs with none of writeguard's logic — the
// evidence for which targets this stack can reach at all. Reads: a fastify route forwarding with
// undici's dispatch API and the answer buffered, as writeguard does (no retry loop, header hygiene,
// request id, log line or metrics). Writes: fastify reads the body and answers a stored 1 KiB 201
// from memory — a replay with no key lookup, fingerprint, record or log. It never forwards a POST.
// Env: PORT, UPSTREAM.
import Fastify from 'fastify';
import { Pool } from 'undici';

const upstream = new URL(process.env.UPSTREAM);
const pool = new Pool(upstream.origin, { connections: 128 });
const STORED = Buffer.from(
  JSON.stringify({
    id: 'pay_0001',
    object: 'payment',
    amount: 1250,
    currency: 'eur',
    status: 'succeeded',
    metadata: {},
    description: 'x'.repeat(904),
  }),
);

const app = Fastify();
app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

app.get('/*', (request, reply) => {
  const chunks = [];
  pool.dispatch(
    { origin: upstream.origin, path: request.url, method: 'GET', headers: { host: upstream.host } },
    {
      onRequestStart() {},
      onResponseStart(_c, status, headers) {
        reply.code(status).header('content-type', headers['content-type']).header('request-id', headers['request-id']);
      },
      onResponseData(_c, chunk) {
        chunks.push(chunk);
      },
      onResponseEnd() {
        reply.send(Buffer.concat(chunks));
      },
      onResponseError(_c, err) {
        reply.send(err);
      },
    },
  );
  return reply;
});

app.post('/*', (_request, reply) => {
  reply
    .code(201)
    .header('content-type', 'application/json')
    .header('request-id', 'req_1')
    .header('idempotent-replayed', 'true')
    .send(STORED);
});

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () =>
  app
    .close()
    .then(() => pool.close())
    .then(() => process.exit(0)),
);
