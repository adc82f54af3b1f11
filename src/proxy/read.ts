// Reads: safe methods go through writeguard's retry loop with undici; the final answer goes back
// whole when small (most API answers), streamed when large.
import type { FastifyReply } from 'fastify';
import { attemptFailureError, type AttemptFailure, type AttemptResult, type StreamedAnswer } from '../http/attempt.js';
import { passCooldown } from '../retry/cooldown.js';
import { retryAfterSeconds } from '../retry/delay.js';
import { attemptOnce, noteRetry, type AttemptTarget } from '../retry/instrumented.js';
import { retryLoop } from '../retry/loop.js';
import type { ForwardContext } from './context.js';
import { INSPECT_MAX_BYTES, renderRead } from './render.js';

/** Answers a read may be retried on: nothing is changed by asking again. */
const READ_RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

type ReadAttempt = AttemptResult | StreamedAnswer;

function isAnswer(r: ReadAttempt): r is Exclude<ReadAttempt, AttemptFailure> {
  return r.kind === 'answer' || r.kind === 'stream';
}

/** A safe method: retried on 408/429/5xx and connection failures, inside the attempt, time and budget limits. */
export async function forwardRead(ctx: ForwardContext, target: AttemptTarget): Promise<FastifyReply> {
  const { upstream, reply, exchange } = ctx;
  const startedAt = Date.now();
  await passCooldown(target.kit, target.scope, upstream, startedAt);
  // A retried answer's body is discarded only when the next attempt starts: if the wait is cut short
  // (shutdown, agent gone), that answer is what goes back, body intact.
  let previous: ReadAttempt | null = null;
  const loop = await retryLoop<ReadAttempt>({
    policy: upstream.retry,
    budget: target.kit.budgets.get(upstream.name)!,
    startedAt,
    signal: target.kit.signal,
    attempt: async () => {
      if (previous?.kind === 'stream') previous.stream.destroy();
      const request = {
        origin: ctx.origin,
        path: ctx.path,
        method: ctx.request.method,
        headers: ctx.headers,
        body: null,
        timeoutMs: upstream.timeoutMs,
      };
      return (previous = await attemptOnce(target, 'read', request, INSPECT_MAX_BYTES));
    },
    retryable: (r) => !isAnswer(r) || READ_RETRY_STATUSES.has(r.status),
    headersOf: (r) => (isAnswer(r) ? r.headers : null),
    mayContinue: () => !reply.raw.destroyed,
    onRetry: (n, delayMs, r) => noteRetry(target, 'read', n, delayMs, r),
  });
  exchange.attempts = loop.attempts;
  const last = loop.result;
  if (!isAnswer(last)) throw attemptFailureError(last, 'read');
  // Passed back early rather than slept: tell the agent when to come back.
  const early = loop.stopped === 'elapsed' && last.headers['retry-after'] === undefined && loop.retryAfterMs !== null;
  const body = last.kind === 'stream' ? last.stream : last.body;
  return renderRead(
    reply,
    exchange,
    upstream,
    { status: last.status, headers: last.headers, body },
    early ? retryAfterSeconds(loop.retryAfterMs!) : null,
  );
}
