// Real rate-limiting libraries as the upstream: express + express-rate-limit (epoch-seconds
// X-RateLimit-Reset, the IETF draft-6/7/8 RateLimit headers) and fastify + @fastify/rate-limit (delta
// x-ratelimit-reset). One request per window: the second of two writes is rate-limited first; writeguard
// waits for the reset the library announced (never sooner) and gets it through with the same key.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import rateLimitFastify from '@fastify/rate-limit';
import express from 'express';
import { rateLimit, type Options as ExpressRateLimitOptions } from 'express-rate-limit';
import Fastify from 'fastify';
import { post } from '../helpers/problem.js';
import { startWriteguard } from '../helpers/writeguard.js';

const WINDOW_MS = 1000;

interface LimitedUpstream {
  url: string;
  /** Every request the server received (the limiter's refusals included), with its key and time. */
  seen: { key: string | undefined; at: number }[];
  /** Times the route handler ran (the limiter let the request through), with the key it carried. */
  ran: { key: string | undefined; at: number }[];
  /** Rate-limit headers of the refusals, to show which ones writeguard had to go by. */
  refusals: Record<string, unknown>[];
  close(): Promise<void>;
}

const RATE_HEADERS = /^(retry-after|x-ratelimit-.*|ratelimit.*)$/;

function pickRateHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => RATE_HEADERS.test(name.toLowerCase())));
}

async function expressUpstream(limits: Partial<ExpressRateLimitOptions>, dropRetryAfter: boolean): Promise<LimitedUpstream> {
  const seen: LimitedUpstream['seen'] = [];
  const ran: LimitedUpstream['ran'] = [];
  const refusals: LimitedUpstream['refusals'] = [];
  const app = express();
  app.use((req, _res, next) => {
    seen.push({ key: req.get('idempotency-key'), at: Date.now() });
    next();
  });
  app.use(
    rateLimit({
      windowMs: WINDOW_MS,
      limit: 1,
      ...limits,
      handler: (_req, res, _next, options) => {
        // The library sets Retry-After on every refusal; dropped, writeguard must go by the reset headers alone.
        if (dropRetryAfter) res.removeHeader('Retry-After');
        refusals.push(pickRateHeaders(res.getHeaders()));
        res.status(options.statusCode).json({ error: { type: 'rate_limit_error', message: 'Too many requests' } });
      },
    }),
  );
  app.post('/v1/payments', (req, res) => {
    ran.push({ key: req.get('idempotency-key'), at: Date.now() });
    res.status(201).json({ id: `pay_${ran.length}` });
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    ran,
    refusals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function fastifyUpstream(addHeaders: Record<string, boolean>): Promise<LimitedUpstream> {
  const seen: LimitedUpstream['seen'] = [];
  const ran: LimitedUpstream['ran'] = [];
  const refusals: LimitedUpstream['refusals'] = [];
  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (req) => {
    seen.push({ key: req.headers['idempotency-key'] as string | undefined, at: Date.now() });
  });
  app.addHook('onSend', async (_req, reply) => {
    if (reply.statusCode === 429) refusals.push(pickRateHeaders(reply.getHeaders()));
  });
  await app.register(rateLimitFastify, { max: 1, timeWindow: WINDOW_MS, addHeaders });
  app.post('/v1/payments', async (req) => {
    ran.push({ key: req.headers['idempotency-key'] as string | undefined, at: Date.now() });
    return { id: `pay_${ran.length}` };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, seen, ran, refusals, close: () => app.close() };
}

/** Two writes with different keys through a fresh writeguard: both succeed, the second after one wait. */
async function twoWrites(up: LimitedUpstream, okStatus: number, expectHeaders: (refusal: Record<string, unknown>) => void): Promise<void> {
  const wg = await startWriteguard({ upstreams: [{ name: 'api', target: up.url }] });
  try {
    const suffix = `${process.pid}-${Date.now()}`;
    const first = await post(`${wg.url}/v1/payments`, '{"amount":100}', { 'idempotency-key': `lib-a-${suffix}` });
    assert.equal(first.status, okStatus, await first.text());
    assert.equal(first.headers.get('x-writeguard-attempts'), '1');

    const started = Date.now();
    const second = await post(`${wg.url}/v1/payments`, '{"amount":200}', { 'idempotency-key': `lib-b-${suffix}` });
    const text = await second.text();
    assert.equal(second.status, okStatus, text);
    assert.equal(JSON.parse(text).id, 'pay_2');
    assert.equal(second.headers.get('x-writeguard-attempts'), '2');
    assert.equal(second.headers.get('x-should-retry'), 'false');
    assert.ok(Date.now() - started < 4500, `the second write took ${Date.now() - started} ms`);

    assert.equal(up.ran.length, 2, 'the handler ran exactly twice');
    assert.equal(up.seen.length, 3, 'one refusal in between, no more');
    assert.deepEqual(
      up.seen.map((s) => s.key),
      [`lib-a-${suffix}`, `lib-b-${suffix}`, `lib-b-${suffix}`],
      'the retry carries the same key',
    );
    assert.equal(up.refusals.length, 1);
    expectHeaders(up.refusals[0]!);
    // writeguard waited for the window the first write opened to end: never sooner than the reset.
    assert.ok(
      up.ran[1]!.at - up.ran[0]!.at >= WINDOW_MS,
      `retried ${up.ran[1]!.at - up.ran[0]!.at} ms after the window opened (window ${WINDOW_MS} ms)`,
    );
  } finally {
    await wg.close();
    await up.close();
  }
}

test('express-rate-limit, legacy headers (Retry-After and epoch-seconds X-RateLimit-Reset)', async () => {
  const up = await expressUpstream({ legacyHeaders: true, standardHeaders: false }, false);
  await twoWrites(up, 201, (h) => {
    assert.equal(h['retry-after'], '1');
    assert.ok(Number(h['x-ratelimit-reset']) > 1e9 && Number(h['x-ratelimit-reset']) < 1e10, 'epoch seconds');
  });
});

test('express-rate-limit, legacy headers without Retry-After: waits for the epoch-seconds X-RateLimit-Reset', async () => {
  const up = await expressUpstream({ legacyHeaders: true, standardHeaders: false }, true);
  await twoWrites(up, 201, (h) => {
    assert.equal(h['retry-after'], undefined);
    assert.ok(Number(h['x-ratelimit-reset']) > 1e9, 'epoch seconds');
  });
});

test('express-rate-limit, standardHeaders draft-6 without Retry-After: waits for RateLimit-Reset (delta)', async () => {
  const up = await expressUpstream({ legacyHeaders: false, standardHeaders: 'draft-6' }, true);
  await twoWrites(up, 201, (h) => {
    assert.equal(h['retry-after'], undefined);
    assert.equal(h['x-ratelimit-reset'], undefined);
    assert.equal(h['ratelimit-reset'], '1');
  });
});

test('express-rate-limit, standardHeaders draft-7 without Retry-After: waits for RateLimit reset=', async () => {
  const up = await expressUpstream({ legacyHeaders: false, standardHeaders: 'draft-7' }, true);
  await twoWrites(up, 201, (h) => {
    assert.equal(h['retry-after'], undefined);
    assert.equal(h['ratelimit'], 'limit=1, remaining=0, reset=1');
  });
});

test('express-rate-limit, standardHeaders draft-8 without Retry-After: waits for RateLimit t=', async () => {
  const up = await expressUpstream({ legacyHeaders: false, standardHeaders: 'draft-8' }, true);
  await twoWrites(up, 201, (h) => {
    assert.equal(h['retry-after'], undefined);
    assert.match(String(h['ratelimit']), /^"[^"]+"; r=0; t=1$/);
  });
});

test('@fastify/rate-limit, default headers (retry-after and delta x-ratelimit-reset)', async () => {
  const up = await fastifyUpstream({});
  await twoWrites(up, 200, (h) => {
    assert.equal(String(h['retry-after']), '1');
    assert.equal(String(h['x-ratelimit-reset']), '1', 'delta seconds');
  });
});

test('@fastify/rate-limit without retry-after: waits for the delta x-ratelimit-reset', async () => {
  const up = await fastifyUpstream({ 'retry-after': false });
  await twoWrites(up, 200, (h) => {
    assert.equal(h['retry-after'], undefined);
    assert.equal(String(h['x-ratelimit-reset']), '1', 'delta seconds');
  });
});
