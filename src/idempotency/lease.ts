// Keeps a claimed record's lease alive while its attempts run: renewed every third of its length;
// a refused renewal means another owner holds the record, and no new attempt may start.
import type { Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import type { Fence, Store } from '../store/store.js';

export interface Lease {
  stop(): void;
  /** Another owner took the record over: stop attempting. */
  lost(): boolean;
}

export function keepLease(store: Store, metrics: Metrics, log: Logger, fence: Fence, leaseMs: number): Lease {
  let lost = false;
  const timer = setInterval(
    () => {
      metrics
        .store('renew', () => store.renew(fence, leaseMs))
        .then(
          (r) => {
            if (r === 'stale') {
              lost = true;
              log.warn({ upstream: fence.key.upstream }, 'lease renewal refused: another owner holds the record');
              clearInterval(timer);
            }
          },
          () => {}, // store down: the lease may lapse; finish reports what happened
        );
    },
    Math.max(50, Math.floor(leaseMs / 3)),
  );
  return { stop: () => clearInterval(timer), lost: () => lost };
}
