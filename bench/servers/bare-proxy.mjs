// Contender "bare @fastify/http-proxy": fastify and @fastify/http-proxy with their defaults and no
// logic of ours — the floor of writeguard's own stack. Env: PORT, UPSTREAM.
import Fastify from 'fastify';
import httpProxy from '@fastify/http-proxy';

const app = Fastify();
await app.register(httpProxy, { upstream: process.env.UPSTREAM });
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
