// Contender "bare proxy + SET NX": the least an idempotent proxy on Redis can do — one SET NX to
// claim the key before forwarding, one SET to record the answer after (before replying, as a
// store-then-answer proxy must). No fingerprint, no fencing, no stored body, no logging: the
// baseline issue 6 asks writeguard to beat by 1.2× on new writes. Env: PORT, UPSTREAM, REDIS_PORT.
import Fastify from 'fastify';
import httpProxy from '@fastify/http-proxy';
import { Redis } from 'ioredis';

const redis = new Redis({ host: '127.0.0.1', port: Number(process.env.REDIS_PORT) });
redis.on('error', () => {}); // a failed SET surfaces on its request as a 500, which the bench counts
const app = Fastify();
const LEASE_MS = 35_000;
const TTL_MS = 86_400_000;

await app.register(httpProxy, {
  upstream: process.env.UPSTREAM,
  preHandler: async (request, reply) => {
    if (request.method !== 'POST') return;
    const key = request.headers['idempotency-key'];
    if (typeof key !== 'string') return reply.code(400).send({ error: { code: 'idempotency_key_missing' } });
    request.benchKey = `bx:${key}`;
    if ((await redis.set(request.benchKey, 'in_flight', 'PX', LEASE_MS, 'NX')) === null) {
      return reply.code(409).send({ error: { code: 'idempotency_key_in_use' } });
    }
  },
  replyOptions: {
    onResponse: async (request, reply, res) => {
      try {
        if (request.benchKey !== undefined) await redis.set(request.benchKey, `done:${res.statusCode}`, 'PX', TTL_MS);
        reply.send(res.stream);
      } catch (err) {
        reply.send(err);
      }
    },
  },
});
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () =>
  app
    .close()
    .then(() => redis.quit())
    .then(() => process.exit(0)),
);
