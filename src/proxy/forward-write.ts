// A write sent once, unprotected: the answer goes back as it came, failures in writeguard's words.
import { WriteguardError } from '../errors.js';
import { sendAnswer } from './answer.js';
import type { WriteContext } from './plugin.js';
import { sendAttempt, type AttemptResult } from './write.js';

export async function forwardWrite(ctx: WriteContext): Promise<void> {
  const result = await sendAttempt(ctx.dispatcher, {
    origin: ctx.origin, path: ctx.path, method: ctx.request.method, headers: ctx.headers, body: ctx.body, timeoutMs: ctx.upstream.timeoutMs,
  });
  if (result.kind !== 'answer') throw failureError(result);
  sendAnswer(ctx.reply, ctx.exchange, ctx.upstream, result);
}

/** No answer from the upstream, as the error the agent receives. */
export function failureError(result: Exclude<AttemptResult, { kind: 'answer' }>, idempotencyKey?: string): WriteguardError {
  if (result.kind === 'not_sent') {
    return new WriteguardError('upstream_unreachable', `the upstream could not be reached (${result.reason}); nothing was sent`, { idempotencyKey });
  }
  return new WriteguardError(
    'outcome_unknown',
    result.timedOut ? 'the upstream did not answer in time; the write may have run' : `the connection failed after sending (${result.reason}); the write may have run`,
    { status: result.timedOut ? 504 : 502, idempotencyKey },
  );
}
