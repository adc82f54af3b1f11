// The agents' clients, each the real library with its own retries, all through the checker's fetch:
// openai (keyless: writeguard derives the key; its retries carry X-Stainless-Retry-Count), stripe
// (its automatic Idempotency-Key, maxNetworkRetries 2), axios with axios-retry (a key per operation,
// retried on 409/503 marked x-should-retry and on network errors), and plain fetch with a key.
import { randomUUID } from 'node:crypto';
import axios from 'axios';
import axiosRetry, { exponentialDelay } from 'axios-retry';
import OpenAI from 'openai';
import Stripe from 'stripe';
import type { Checker, Op } from './checker.js';
import { SECRETS } from './checker.js';
import { sleep } from './procs.js';

export type ClientKind = 'openai' | 'stripe' | 'axios' | 'fetch';
export const CLIENT_KINDS: readonly ClientKind[] = ['openai', 'stripe', 'axios', 'fetch'];

export interface Targets {
  /** Per writeguard instance: the main listener (prefix /) and the stripe listener. */
  main: string[];
  stripe: string[];
}

export interface SendOptions {
  /** The client's own timeout per attempt. */
  timeoutMs: number;
  /** Adds `?token=…` (a planted query-string secret). */
  queryToken?: boolean;
}

/** Creates the op in the checker (upstream, bases, key) for a client kind. */
export function newOp(
  checker: Checker,
  kind: ClientKind,
  agent: string,
  id: string,
  targets: Targets,
  queryToken = false,
  stripeKey = false,
): Op {
  const stripe = kind === 'stripe';
  const path = stripe ? '/v1/payment_intents' : `/v1/payments${queryToken ? `?token=${SECRETS.queryToken}` : ''}`;
  return checker.op({
    id,
    agent,
    client: kind,
    upstream: stripe ? 'stripe' : 'pay',
    bases: stripe ? targets.stripe : targets.main,
    path,
    keySource: kind === 'openai' ? 'derived' : 'client',
    key: kind === 'axios' || kind === 'fetch' || (stripe && stripeKey) ? `${kind}-${randomUUID()}` : null,
  });
}

/** Sends the op once through its client (whose own retries run inside). Never throws. */
export async function send(checker: Checker, op: Op, instance: number, options: SendOptions): Promise<void> {
  const base = op.bases[instance % op.bases.length]!;
  const amount = 100 + (op.id.length % 7) * 10;
  try {
    switch (op.client) {
      case 'openai': {
        const client = new OpenAI({
          apiKey: SECRETS.auth,
          baseURL: `${base}/v1`,
          maxRetries: 2,
          timeout: options.timeoutMs,
          fetch: checker.fetchFor(op),
        });
        await client.post(op.path.replace(/^\/v1/, ''), { body: { op: op.id, amount, currency: 'usd' } });
        return;
      }
      case 'stripe': {
        const url = new URL(base);
        const stripe = new Stripe(SECRETS.stripeKey, {
          host: url.hostname,
          port: Number(url.port),
          protocol: 'http',
          maxNetworkRetries: 2,
          timeout: options.timeoutMs,
          httpClient: Stripe.createFetchHttpClient(checker.fetchFor(op)),
        });
        // A key of our own only when the op is sent twice on purpose; else stripe-node makes one per call.
        await stripe.paymentIntents.create(
          { amount, currency: 'usd', metadata: { op: op.id } },
          op.key === null ? undefined : { idempotencyKey: op.key },
        );
        return;
      }
      case 'axios': {
        const api = axios.create({ baseURL: base, timeout: options.timeoutMs, adapter: 'fetch', env: { fetch: checker.fetchFor(op) } });
        axiosRetry(api, {
          retries: 3,
          shouldResetTimeout: true,
          // Adversarial: network errors and timeouts too (the key makes it safe), plus writeguard's two retryable answers.
          retryCondition: (err) =>
            err.response === undefined || ([409, 503].includes(err.response.status) && err.response.headers['x-should-retry'] === 'true'),
          retryDelay: (n, err) => Math.min(exponentialDelay(n, err, 100), 1500),
        });
        await api.post(op.path, { op: op.id, amount, currency: 'usd' }, { headers: { 'Idempotency-Key': op.key! } });
        return;
      }
      case 'fetch': {
        const f = checker.fetchFor(op);
        for (let attempt = 0; attempt < 4; attempt++) {
          let status = 0;
          let retry = false;
          try {
            const res = await f(`${base}${op.path}`, {
              method: 'POST',
              body: JSON.stringify({ op: op.id, amount, currency: 'usd' }),
              headers: { 'content-type': 'application/json', 'idempotency-key': op.key! },
              signal: AbortSignal.timeout(options.timeoutMs),
            });
            status = res.status;
            retry = res.headers.get('x-should-retry') === 'true';
            await res.arrayBuffer();
          } catch {
            retry = true;
          }
          if (!retry || (status !== 0 && status !== 409 && status !== 503)) return;
          await sleep(200 * (attempt + 1));
        }
        return;
      }
    }
  } catch {
    // The exchanges are recorded; the error is the agent's to see, the checker's to judge.
  }
}

export interface LoadOptions {
  agents: number;
  /** Op ids are `op_${prefix}_a<agent>_n<n>`. */
  prefix: string;
  stopAt: number;
  maxOpsPerAgent?: number;
  kinds?: readonly ClientKind[];
  timeoutMs?: number;
  /** The agent's own later retries of an op that did not settle (bounded). */
  retryRounds?: number;
  retryPauseMs?: number;
  pauseMs?: [number, number];
  queryTokenChance?: number;
}

/** Agents issuing writes until `stopAt`, each op retried by its agent until it settles (bounded). */
export async function runLoad(
  checker: Checker,
  targets: Targets,
  rng: { fork(label: string): { int(a: number, b: number): number; chance(p: number): boolean } },
  o: LoadOptions,
): Promise<void> {
  const kinds = o.kinds ?? CLIENT_KINDS;
  await Promise.all(
    Array.from({ length: o.agents }, async (_, a) => {
      const r = rng.fork(`${o.prefix}-agent-${a}`);
      const kind = kinds[a % kinds.length]!;
      for (let n = 0; Date.now() < o.stopAt && n < (o.maxOpsPerAgent ?? 1000); n++) {
        const op = newOp(checker, kind, `agent-${a}`, `op_${o.prefix}_a${a}_n${n}`, targets, r.chance(o.queryTokenChance ?? 0.2));
        await send(checker, op, r.int(0, targets.main.length - 1), { timeoutMs: o.timeoutMs ?? 4000 });
        await checker.retryOp(op, o.retryRounds ?? 8, o.retryPauseMs ?? 400, (round) => op.bases[(round + a) % op.bases.length]!);
        const [lo, hi] = o.pauseMs ?? [50, 250];
        await sleep(r.int(lo, hi));
      }
    }),
  );
}
