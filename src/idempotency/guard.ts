// The protected write: key → fingerprint → begin → (markSent → attempt → finish) or an answer from the record.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Config, IdempotencyConfig } from '../config/schema.js';
import { WriteguardError } from '../errors.js';
import { extractAnswer, parseJsonBody, type Extracted } from '../observe/extract.js';
import type { Logger } from '../observe/logger.js';
import { retryReason, type Metrics } from '../observe/metrics.js';
import type { KeySource } from '../observe/response-log.js';
import { sendAnswer, type Answer } from '../proxy/answer.js';
import { failureError, forwardWrite } from '../proxy/forward-write.js';
import { valuesOf, type HeaderMap } from '../proxy/headers.js';
import { upstreamPath } from '../proxy/route.js';
import type { WriteContext, WriteHandler } from '../proxy/plugin.js';
import { sendAttempt, type AttemptResult } from '../proxy/write.js';
import { noteRateLimit, passCooldown, type RetryKit } from '../retry/cooldown.js';
import { retryAfterSeconds } from '../retry/delay.js';
import { retryLoop, sleep, type LoopResult } from '../retry/loop.js';
import { mayHaveSent } from './decide.js';
import { decideOutcome, isAmbiguous, ambiguityReason, writeRetryable } from './outcome.js';
import { StoreFullError, StoreUnavailableError, type BeginResult, type Fence, type FinishOutcome, type IdemRecord, type RecordKey, type ResolveOutcome, type Store, type StoredResponse } from '../store/store.js';
import { fingerprint } from './fingerprint.js';
import { findKey, keyHash } from './key.js';
import { agentOf, credentialOf, generatedUpstreamKey, scopeOf } from './scope.js';

export interface GuardDeps {
  config: Config;
  store: Store;
  log: Logger;
  kit: RetryKit;
  metrics: Metrics;
  /** Keys the HMAC of generated upstream keys; random per process is enough (the record keeps the result). */
  secret?: Buffer;
}

interface Operation {
  key: string;
  source: KeySource;
  /** join: an existing record is this operation; fresh: an existing record is a possible duplicate. */
  mode: 'join' | 'fresh';
  /** `Idempotency-Intent: new` on a keyless write: `start` a new operation, or the SDK's `retry` of one. */
  intentNew?: 'start' | 'retry';
}

const LEASE_MARGIN_MS = 5_000;
const WAIT_POLL_MS = 100;

export function createGuard(deps: GuardDeps): WriteHandler {
  const { config, store, log, kit, metrics } = deps;
  const secret = deps.secret ?? randomBytes(32);

  /** Any store failure fails the write closed: nothing is sent that was not claimed. */
  /** The store itself refuses what may not run while it is not ready (new claims); steps on a claimed record still run. */
  async function storeStep<T>(op: string, step: () => Promise<T>, key?: string): Promise<T> {
    try {
      return await metrics.store(op, step);
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'store step failed');
      if (err instanceof StoreFullError) {
        throw new WriteguardError(
          'store_full',
          `the idempotency store is full (${err.message}); the write was not sent. An operator can raise store.memory.maxRecords / store.memory.maxBytes, or use store.kind: redis`,
          { idempotencyKey: key, cause: err },
        );
      }
      throw storeUnavailable(key, err);
    }
  }

  function storeUnavailable(key: string | undefined, cause?: unknown): WriteguardError {
    const why = store.notReadyReason();
    const detail = `the idempotency store is unavailable${why === null ? '' : ` (${why.detail})`}; the write was not sent. Retry the same request later with the same key`;
    return new WriteguardError('store_unavailable', detail, { idempotencyKey: key, cause });
  }

  return async function guardedWrite(ctx: WriteContext): Promise<void> {
    const startedAt = Date.now();
    const { request, reply, exchange, idempotency: idem } = ctx;
    const raw = request.raw.rawHeaders;
    const agent = agentOf(config.identity, config.identity.agentIdHeader === null ? undefined : valuesOf(raw, config.identity.agentIdHeader));
    const fingerprintHeaders = idem.fingerprintHeaders.flatMap((name) => {
      const values = valuesOf(raw, name);
      return values === undefined ? [] : [[name, values.join(',')] as const];
    });
    const credential = config.identity.credentialsRotate ? undefined : credentialOf(raw, config.identity.credentialHeaders);
    const fp = fingerprint({ method: request.method, apiPath: ctx.apiPath, headers: fingerprintHeaders, body: ctx.body, contentType: request.headers['content-type'], mode: idem.fingerprint, credential });

    let json: unknown = null;
    const found = findKey({
      headerValues: valuesOf(raw, idem.header.toLowerCase()),
      headerName: idem.header,
      keyFrom: idem.keyFrom,
      json: () => (json ??= parseJsonBody({ 'content-type': 'application/json' }, ctx.body) ?? undefined),
    });
    const op = found !== null ? ({ key: found.key, source: found.source, mode: 'join' } satisfies Operation) : missingKey(ctx, fp);
    if (op === null) {
      exchange.keySource = 'none';
      return forwardWrite(ctx);
    }

    const scope = scopeOf(config.namespace, agent);
    // Nothing is claimed for a request refused here.
    await passCooldown(kit, scope, ctx.upstream, startedAt);
    if (op.source === 'derived') op.key = await derivedKey({ scope, upstream: ctx.upstream.name, keyHash: keyHash(op.key) }, op, idem);
    const hash = keyHash(op.key);
    const recordKey: RecordKey = { scope, upstream: ctx.upstream.name, keyHash: hash };
    exchange.keySource = op.source;
    exchange.idempotencyKeyHash = hash.slice(0, 32);
    reply.header(idem.header, op.key);

    const leaseMs = idem.leaseMs ?? ctx.upstream.timeoutMs + LEASE_MARGIN_MS;
    const owner = randomUUID();
    const now = Date.now();
    const upstreamKey = op.source === 'client' || op.source === 'body' ? op.key : generatedUpstreamKey(secret, scope, op.key, now);
    const beginInput = {
      key: recordKey, fingerprint: fp, upstreamKey, owner, leaseMs, mode: op.mode, reclaimUnknown: idem.upstreamHonorsKey,
      meta: { method: request.method, path: exchange.path, keySource: op.source },
    } as const;
    const begin = (): Promise<BeginResult> => storeStep('begin', () => resendable('begin', () => store.begin(beginInput)), op.key);

    let begun = await begin();
    if (begun.outcome === 'in_use' && idem.onConcurrent === 'wait') {
      // Hold the duplicate until the original settles, then answer as a retry would be answered.
      const deadline = Date.now() + idem.waitMs;
      while (begun.outcome === 'in_use' && Date.now() + WAIT_POLL_MS < deadline && !reply.raw.destroyed) {
        await sleep(WAIT_POLL_MS);
        begun = await begin();
      }
    }
    if (begun.outcome === 'unknown' && ctx.reconcile !== null && (await reconcile(ctx, recordKey, begun.record, op))) {
      // Settled by the upstream's own record: the next begin replays it, or claims the released key.
      begun = await begin();
    }
    if (begun.outcome === 'acquired') {
      // A reclaimed record (an unknown outcome re-sent to an upstream that dedupes) may have run before.
      const earlier = mayHaveSent(begun.record) ? `an earlier attempt may have run (${begun.record.reason ?? 'sent'})` : null;
      return attempt(ctx, { key: recordKey, owner, epoch: begun.record.epoch }, begun.record, op, { leaseMs, scope, startedAt, earlier });
    }
    answerFromRecord(ctx, begun, op);
  };

  /**
   * A step whose reply was lost may have applied. Begin and markSent are safe to send once more with
   * the same owner token and fence, after the store is ready again (its sentinel re-checked): the
   * scripts recognise what was ours — no false "in use", no write dead-lettered that never left.
   */
  async function resendable<T>(op: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || !err.mayHaveApplied || !(await store.whenReady(config.store.commandTimeoutMs))) throw err;
      log.info({ op }, 'store step resent with its owner token after a store failure');
      return step();
    }
  }

  /** No key on the request: make one, refuse, or let it through unprotected, as configured. */
  function missingKey(ctx: WriteContext, fp: string): Operation | null {
    const { idempotency: idem, request } = ctx;
    switch (idem.missing) {
      case 'reject':
        throw new WriteguardError('idempotency_key_missing', `this write needs an ${idem.header} header${idem.keyFrom.length > 1 ? ` or one of ${idem.keyFrom.join(', ')}` : ''}`);
      case 'allow':
        return null;
      case 'uuid':
        return { key: `wgu_${randomUUID()}`, source: 'uuid', mode: 'join' };
      case 'derive': {
        const derived = `wgd_${createHash('sha256').update(fp).digest('base64url').slice(0, 32)}`;
        const intent = request.headers['idempotency-intent'];
        const sdkRetry = Number(request.headers['x-stainless-retry-count'] ?? 0) >= 1;
        if (intent === 'new') return { key: derived, source: 'derived', mode: 'join', intentNew: sdkRetry ? 'retry' : 'start' };
        return { key: derived, source: 'derived', mode: sdkRetry || intent === 'retry' ? 'join' : 'fresh' };
      }
    }
  }

  /**
   * The record a keyless write addresses. `Idempotency-Intent: new` starts a new operation under a
   * key of its own, and the store points the derived key at it for the window: its SDK retries
   * join it, and an unmarked identical re-send is refused as its possible duplicate. The pointer
   * is written before the record is claimed, so nothing that may have been sent is ever missed.
   */
  async function derivedKey(alias: RecordKey, op: Operation, idem: IdempotencyConfig): Promise<string> {
    if (op.intentNew !== 'start') {
      const latest = await storeStep('latest', () => store.latestOperation(alias), op.key);
      if (latest !== null) return latest;
      // A retry of a new operation with nothing to follow (its window passed) starts one.
      if (op.intentNew === undefined) return op.key;
    }
    const key = `${op.key}.${randomUUID()}`;
    await storeStep('latest', () => store.setLatestOperation(alias, key, idem.deriveWindowSec * 1000), op.key);
    return key;
  }

  /**
   * Asks the upstream whether an unknown write ran (the route's status-check request, by the key it
   * received): found → completed with that answer; not found → released. True when it settled.
   */
  async function reconcile(ctx: WriteContext, key: RecordKey, record: IdemRecord, op: Operation): Promise<boolean> {
    const probe = ctx.reconcile!;
    const idem = ctx.idempotency;
    const headers: HeaderMap = { ...ctx.headers };
    for (const name of ['content-type', 'content-length', idem.header.toLowerCase()]) delete headers[name];
    const path = upstreamPath(new URL(ctx.upstream.target).pathname, probe.path.replace('{key}', encodeURIComponent(record.upstreamKey)));
    const answer = await sendAttempt(ctx.dispatcher, { origin: ctx.origin, path, method: probe.method, headers, body: null, timeoutMs: ctx.upstream.timeoutMs });
    if (answer.kind !== 'answer') return false;
    const found = probe.foundStatuses.includes(answer.status);
    if (!found && !probe.notFoundStatuses.includes(answer.status)) return false;
    const derived = op.source === 'derived';
    const outcome: ResolveOutcome = found
      ? { kind: 'executed', status: answer.status, response: toStored(answer, idem, ctx), ttlSec: derived ? idem.deriveWindowSec : idem.ttlSec, tombstoneSec: derived ? 0 : idem.tombstoneSec }
      : { kind: 'not_executed' };
    const step = await storeStep('resolve', () => store.resolve(key, record.epoch, outcome), op.key);
    log.info({ upstream: ctx.upstream.name, probe_status: answer.status, settled: step === 'ok' ? outcome.kind : 'stale' }, 'reconciled');
    return step === 'ok';
  }

  function answerFromRecord(ctx: WriteContext, begun: BeginResult, op: Operation): void {
    const { record } = begun;
    const key = op.key;
    switch (begun.outcome) {
      case 'replay':
        return replay(ctx, record, key);
      case 'mismatch':
        throw new WriteguardError('idempotency_key_reuse_mismatch', 'this key was used with a different request (method, path, body or account); use a new key for a new request', { idempotencyKey: key });
      case 'in_use':
        throw new WriteguardError('idempotency_key_in_use', 'a request with this key is still in progress; retry shortly to get its result', {
          idempotencyKey: key,
          headers: { 'retry-after': '1', 'retry-after-ms': '500' },
        });
      case 'unknown':
        throw new WriteguardError('outcome_unknown', `an earlier attempt with this key may have run (${record.reason ?? 'no answer'}); it must be reconciled before it can be retried`, { idempotencyKey: key });
      case 'expired':
        throw new WriteguardError('idempotency_key_expired', 'this key was used and its stored result has expired; the write is not run again', { idempotencyKey: key });
      case 'duplicate':
        throw new WriteguardError(
          'possible_duplicate',
          `an identical ${record.meta.method} ${record.meta.path} was made at ${new Date(record.createdAt).toISOString()} (key ${key}); ` +
            'send Idempotency-Intent: retry to get its result, or Idempotency-Intent: new to make another',
          { idempotencyKey: key },
        );
      case 'acquired':
        throw new Error('unreachable: acquired records are attempted');
    }
  }

  function replay(ctx: WriteContext, record: IdemRecord, key: string): void {
    ctx.exchange.outcome = 'replayed';
    if (record.response === null) {
      ctx.exchange.upstreamRequestId = record.requestId;
      throw new WriteguardError('response_not_replayable', `the original answer (status ${record.status ?? 'unknown'}) was too large to store; the write is not run again`, { idempotencyKey: key });
    }
    ctx.reply.header('idempotent-replayed', 'true').header('x-idempotency-replayed', 'true');
    sendAnswer(ctx.reply, ctx.exchange, ctx.upstream, fromStored(record.response));
    if (record.requestId !== null) ctx.exchange.upstreamRequestId = record.requestId;
  }

  /**
   * Sends inside the lease, retrying only what cannot duplicate the write (answers proving it did not
   * run; or, when the upstream dedupes on the key, ambiguous ones), always with the same key and bytes.
   */
  async function attempt(ctx: WriteContext, fence: Fence, record: IdemRecord, op: Operation, run: { leaseMs: number; scope: string; startedAt: number; earlier: string | null }): Promise<void> {
    const idem = ctx.idempotency;
    const headers: HeaderMap = { ...ctx.headers };
    const headerName = idem.header.toLowerCase();
    delete headers[headerName];
    if (idem.forwardKey) headers[headerName] = record.upstreamKey;

    if ((await storeStep('markSent', () => resendable('markSent', () => store.markSent(fence, run.leaseMs)), op.key)) === 'stale') {
      // The claim lapsed before a byte left: someone else may hold it now.
      throw new WriteguardError('idempotency_key_in_use', 'the claim on this key lapsed before sending; retry shortly', { idempotencyKey: op.key, headers: { 'retry-after': '1' } });
    }
    const renewal = keepLease(fence, run.leaseMs);
    // Why an attempt so far may have run: no later answer can prove it did not.
    let earlier = run.earlier;
    let loop: LoopResult<AttemptResult>;
    metrics.writeStarted();
    try {
      loop = await retryLoop<AttemptResult>({
        policy: ctx.upstream.retry,
        budget: kit.budgets.get(ctx.upstream.name)!,
        startedAt: run.startedAt,
        signal: kit.signal,
        attempt: async (n) => {
          ctx.exchange.attempts = n;
          const result = await sendAttempt(ctx.dispatcher, { origin: ctx.origin, path: ctx.path, method: ctx.request.method, headers, body: ctx.body, timeoutMs: ctx.upstream.timeoutMs });
          metrics.attempt(ctx.upstream.name, 'write', result.kind === 'answer' ? result.status : null);
          if (result.kind === 'answer' && result.status === 429) noteRateLimit(kit, run.scope, ctx.upstream, result.headers);
          return result;
        },
        retryable: (result) => {
          if (isAmbiguous(result, idem)) earlier ??= `attempt ${ctx.exchange.attempts} may have run (${ambiguityReason(result)})`;
          return writeRetryable(result, idem);
        },
        headersOf: (result) => (result.kind === 'answer' ? result.headers : null),
        // No new attempt after the agent left, or once the lease is no longer ours.
        mayContinue: () => !renewal.lost() && !ctx.reply.raw.destroyed,
        beforeRetry: async () => (await metrics.store('markSent', () => store.markSent(fence, run.leaseMs)).catch(() => 'stale' as const)) === 'ok',
        onRetry: (n, delayMs, result) => {
          metrics.retry(ctx.upstream.name, 'write', retryReason(result.kind === 'answer' ? result.status : null, result.kind === 'answer' ? undefined : result.reason));
          log.info({ upstream: ctx.upstream.name, attempt: n, status: result.kind === 'answer' ? result.status : null, failure: result.kind === 'answer' ? undefined : result.reason, delay_ms: delayMs }, 'attempt');
        },
      });
    } finally {
      renewal.stop();
      metrics.writeEnded();
    }
    await settle(ctx, idem, fence, loop, op, earlier);
  }

  /** Renews the lease every third of its length while the attempts run; a refused renewal ends it. */
  function keepLease(fence: Fence, leaseMs: number): { stop(): void; lost(): boolean } {
    let lost = false;
    const timer = setInterval(() => {
      metrics.store('renew', () => store.renew(fence, leaseMs)).then(
        (r) => {
          if (r === 'stale') {
            lost = true;
            log.warn({ upstream: fence.key.upstream }, 'lease renewal refused: another owner holds the record');
            clearInterval(timer);
          }
        },
        () => {}, // store down: the lease may lapse; finish reports what happened
      );
    }, Math.max(50, Math.floor(leaseMs / 3)));
    return { stop: () => clearInterval(timer), lost: () => lost };
  }

  async function settle(ctx: WriteContext, idem: IdempotencyConfig, fence: Fence, loop: LoopResult<AttemptResult>, op: Operation, earlier: string | null): Promise<void> {
    const result = loop.result;
    const derived = op.source === 'derived';
    const decided = decideOutcome(result, idem, earlier);
    const found: Extracted | undefined = result.kind === 'answer' ? extractAnswer(result.status, result.headers, result.body, ctx.upstream) : undefined;
    let outcome: FinishOutcome;
    if (decided.kind === 'completed' && result.kind === 'answer') {
      outcome = {
        kind: 'complete', status: result.status, requestId: found!.requestId, response: toStored(result, idem, ctx),
        // A derived key only joins SDK retries within its window; it leaves no tombstone.
        ttlSec: derived ? idem.deriveWindowSec : idem.ttlSec, tombstoneSec: derived ? 0 : idem.tombstoneSec,
      };
    } else if (decided.kind === 'released') {
      outcome = { kind: 'release' };
    } else {
      const status = result.kind === 'answer' ? result.status : null;
      outcome = { kind: 'unknown', status, requestId: found?.requestId ?? null, reason: decided.kind === 'unknown' ? decided.reason : 'unknown' };
      if (found !== undefined) {
        ctx.exchange.upstreamCode = found.code;
        ctx.exchange.upstreamRequestId = found.requestId;
      }
    }

    let stored = true;
    try {
      const step = await metrics.store('finish', () => store.finish(fence, outcome));
      if (step === 'stale') {
        // Another owner took the record over, or the store lost it: this answer is not what it holds.
        stored = false;
        log.warn({ upstream: fence.key.upstream, outcome: outcome.kind }, 'finish refused: a newer attempt owns the record, or the store lost it');
        ctx.reply.header('writeguard-stored', 'false');
      }
    } catch (err) {
      // Nothing is reported as stored that isn't: the lease will lapse in phase `sent` → outcome_unknown.
      stored = false;
      log.warn({ err: { message: (err as Error).message } }, 'finish not confirmed: if it did not apply, the record becomes outcome_unknown when its lease lapses');
      ctx.reply.header('writeguard-stored', 'false');
    }
    if (outcome.kind === 'unknown') ctx.exchange.outcome = 'unknown';
    else if (outcome.kind === 'release' && stored) ctx.exchange.outcome = 'released';

    if (result.kind === 'answer') {
      // The answer goes back when it is the write's result or proves nothing ran; an ambiguous one
      // too when the upstream dedupes on the key (the agent may retry with it). Never a "nothing
      // ran" answer after an attempt that may have run.
      if (decided.kind !== 'unknown' || (idem.upstreamHonorsKey && isAmbiguous(result, idem))) {
        // Passed back rather than slept (elapsed budget) or after the last attempt: say when to come back.
        if (result.headers['retry-after'] === undefined && loop.retryAfterMs !== null && loop.stopped !== 'final') {
          ctx.reply.header('retry-after', retryAfterSeconds(loop.retryAfterMs));
        }
        return sendAnswer(ctx.reply, ctx.exchange, ctx.upstream, result, found);
      }
      throw new WriteguardError('outcome_unknown', `the upstream answered ${result.status}; the write may have run (${decided.reason}) and is held for reconciliation`, { idempotencyKey: op.key });
    }
    if (result.kind === 'not_sent' && decided.kind === 'unknown') {
      throw new WriteguardError('outcome_unknown', `the upstream could not be reached (${result.reason}), but ${decided.reason}; it is held for reconciliation`, { idempotencyKey: op.key });
    }
    throw failureError(result, op.key);
  }
}

const BODY_HEADERS = ['content-type', 'content-encoding'];

function toStored(answer: Answer, idem: IdempotencyConfig, ctx: WriteContext): StoredResponse | null {
  if (answer.body.length > idem.maxStoredResponseBytes) return null;
  // Whatever the allow-list says, a replay carries what is needed to read its body (fastify sets
  // content-length from the stored bytes): gzip bytes without their content-encoding look like a
  // failed payment to the agent, which may then pay again.
  const keep = new Set([...BODY_HEADERS, ...idem.replayHeaders, ...ctx.upstream.requestIdHeaders]);
  const headers: Record<string, string | string[]> = {};
  for (const name of keep) {
    const value = answer.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  return { status: answer.status, headers, body: answer.body.toString('base64') };
}

function fromStored(response: StoredResponse): Answer {
  return { status: response.status, headers: response.headers, body: Buffer.from(response.body, 'base64') };
}
