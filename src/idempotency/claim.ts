// The claim of a protected write: which record a keyless write addresses, then begin — with a
// duplicate held while the original runs, and an unknown outcome reconciled by the upstream's own
// record. The agent leash's intent and charges ride on the same begin (one atomic script).
import type { Logger } from '../observe/logger.js';
import type { RetryKit } from '../retry/cooldown.js';
import { sleep } from '../retry/loop.js';
import type { BeginInput, BeginResult, Charge, IntentClaim, RecordKey, Store } from '../store/store.js';
import { keyHash } from './key.js';
import { deliberateKey, type Operation } from './operation.js';
import { probeOutcome } from './reconcile.js';
import { generatedUpstreamKey } from './scope.js';
import type { StoreSteps } from './store-steps.js';
import type { WriteRequest } from './write.js';

export interface ClaimDeps {
  store: Store;
  steps: StoreSteps;
  log: Logger;
  kit: RetryKit;
  /** Keys the HMAC of generated upstream keys. */
  secret: Buffer;
}

export interface ClaimInput {
  req: WriteRequest;
  op: Operation;
  key: RecordKey;
  fingerprint: string;
  owner: string;
  leaseMs: number;
  intent: IntentClaim | null;
  charges: readonly Charge[];
  pointer: BeginInput['pointer'];
  approval: BeginInput['approval'];
}

const WAIT_POLL_MS = 100;

/**
 * The record a keyless write addresses. `Idempotency-Intent: new` starts a new operation under a
 * key of its own, and the begin that creates its record points the derived key at it for the
 * window (in the same atomic step: a refused begin moves nothing): its SDK retries join it, and an
 * unmarked identical re-send is refused as its possible duplicate.
 */
export async function derivedKey(
  deps: ClaimDeps,
  req: WriteRequest,
  scope: string,
  op: Operation,
): Promise<{ key: string; pointer: BeginInput['pointer'] }> {
  const { store, steps } = deps;
  const alias: RecordKey = { scope, upstream: req.upstream.name, keyHash: keyHash(op.key) };
  if (op.intentNew !== 'start') {
    const latest = await steps.step('latest', () => store.latestOperation(alias), op.key, req.trace);
    if (latest !== null) return { key: latest, pointer: null };
    // A retry of a new operation with nothing to follow (its window passed) starts one.
    if (op.intentNew === undefined) return { key: op.key, pointer: null };
  }
  const key = deliberateKey(op.key);
  return { key, pointer: { from: alias.keyHash, operationKey: key, ttlMs: req.idempotency.deriveWindowSec * 1000 } };
}

/** Begin; a duplicate held while the original runs (`onConcurrent: wait`); an unknown outcome reconciled. */
export async function claimRecord(deps: ClaimDeps, input: ClaimInput): Promise<BeginResult> {
  const { store, steps, log, kit } = deps;
  const { req, op, key } = input;
  const idem = req.idempotency;
  const upstreamKey =
    op.source === 'client' || op.source === 'body' ? op.key : generatedUpstreamKey(deps.secret, key.scope, op.key, Date.now());
  const begin = (): Promise<BeginResult> =>
    steps.step(
      'begin',
      () =>
        steps.resendable('begin', () =>
          store.begin({
            key,
            fingerprint: input.fingerprint,
            upstreamKey,
            owner: input.owner,
            leaseMs: input.leaseMs,
            mode: op.mode,
            reclaimUnknown: idem.upstreamHonorsKey,
            meta: { method: req.method, path: req.logPath, keySource: op.source },
            intent: input.intent,
            charges: input.charges,
            pointer: input.pointer,
            approval: input.approval,
          }),
        ),
      op.key,
      req.trace,
    );
  let begun = await begin();
  if (begun.outcome === 'in_use' && idem.onConcurrent === 'wait') {
    // Hold the duplicate until the original settles, then answer as a retry would be answered.
    const deadline = Date.now() + idem.waitMs;
    while (begun.outcome === 'in_use' && Date.now() + WAIT_POLL_MS < deadline && !req.client.destroyed) {
      const slept = await sleep(WAIT_POLL_MS, kit.signal).then(
        () => true,
        () => false,
      );
      if (!slept) break;
      begun = await begin();
    }
  }
  if (begun.outcome !== 'unknown' || req.reconcile === null) return begun;
  const { record } = begun;
  const probed = await probeOutcome(
    {
      ...req.reconcile,
      upstream: req.upstream,
      dispatcher: req.dispatcher,
      origin: req.origin,
      headers: req.trace === null ? req.headers : req.trace.propagate(req.headers),
      idempotency: idem,
    },
    record,
    op.source === 'derived',
  );
  if (probed === null) return begun;
  const step = await steps.step('resolve', () => store.resolve(key, record, probed.outcome), op.key, req.trace);
  log.info(
    { upstream: req.upstream.name, probe_status: probed.status, settled: step === 'ok' ? probed.outcome.kind : 'stale' },
    'reconciled',
  );
  // Settled by the upstream's own record: the next begin replays it, or claims the released key.
  return step === 'ok' ? begin() : begun;
}
