// A store step as the write path takes it: timed (a metric, and an event on the request's span when
// tracing is on), and any failure as the error the agent reads (the write was not sent); and the
// resend of a step whose reply may have been lost.
import { WriteguardError } from '../errors.js';
import type { Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import type { RequestTrace } from '../observe/trace-types.js';
import { StoreFullError, StoreUnavailableError, type Store } from '../store/store.js';

export interface StoreSteps {
  /** The store refuses what may not run while it is not ready (new claims); steps on a claimed record still run. */
  step<T>(op: string, work: () => Promise<T>, key: string | undefined, trace: RequestTrace | null): Promise<T>;
  /** Timed only: a failure stays the store's (a step whose failure the caller handles itself). */
  timed<T>(op: string, work: () => Promise<T>, trace: RequestTrace | null): Promise<T>;
  /**
   * A step whose reply was lost may have applied. Begin and markSent are safe to send once more with
   * the same owner token and fence, after the store is ready again (its sentinel re-checked): the
   * scripts recognise what was ours — no false "in use", no write dead-lettered that never left.
   */
  resendable<T>(op: string, work: () => Promise<T>): Promise<T>;
}

/** A step as an event on the request's span: when it started, and whether it failed. */
async function traced<T>(trace: RequestTrace, op: string, work: () => Promise<T>): Promise<T> {
  const startedAt = performance.now();
  let failed = true;
  try {
    const result = await work();
    failed = false;
    return result;
  } finally {
    trace.storeStep(op, startedAt, failed);
  }
}

export function storeSteps(store: Store, metrics: Metrics, log: Logger, commandTimeoutMs: number): StoreSteps {
  // Tracing off: the metric's own promise, nothing more.
  const timed = <T>(op: string, work: () => Promise<T>, trace: RequestTrace | null): Promise<T> =>
    trace === null ? metrics.store(op, work) : traced(trace, op, () => metrics.store(op, work));
  return {
    timed,
    async step(op, work, key, trace) {
      try {
        return await timed(op, work, trace);
      } catch (err) {
        log.warn({ err: { message: (err as Error).message } }, 'store step failed');
        if (err instanceof StoreFullError) {
          const detail = `the idempotency store is full (${err.message}); the write was not sent. An operator can raise store.memory.maxRecords / store.memory.maxBytes, or use store.kind: redis`;
          throw new WriteguardError('store_full', detail, { idempotencyKey: key, cause: err });
        }
        const why = store.notReadyReason();
        const detail = `the idempotency store is unavailable${why === null ? '' : ` (${why.detail})`}; the write was not sent. Retry the same request later with the same key`;
        throw new WriteguardError('store_unavailable', detail, { idempotencyKey: key, cause: err });
      }
    },
    async resendable(op, work) {
      try {
        return await work();
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || !err.mayHaveApplied || !(await store.whenReady(commandTimeoutMs))) throw err;
        log.info({ op }, 'store step resent with its owner token after a store failure');
        return work();
      }
    },
  };
}
