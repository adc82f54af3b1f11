// The protected write, top to bottom: which operation → begin (the claim) → attempts inside the
// lease → finish — or an answer from the record. Returns a WriteResult; writes no reply.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { approvalNeeded } from '../leash/approval.js';
import { agentPaused } from '../leash/breaker.js';
import { NO_ALERTS, type Alerts } from '../observe/alerts.js';
import { writeEvents } from './write-events.js';
import { WriteguardError } from '../errors.js';
import { attemptFailureError, type AttemptResult } from '../http/attempt.js';
import { valuesOf, type HeaderMap } from '../http/headers.js';
import { extractAnswer } from '../observe/extract.js';
import { parseLossless } from '../observe/json-body.js';
import type { Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import { passCooldown, type RetryKit } from '../retry/cooldown.js';
import { attemptOnce, noteRetry, type AttemptTarget } from '../retry/instrumented.js';
import { retryLoop, type LoopResult } from '../retry/loop.js';
import { mayHaveSent } from '../store/decide.js';
import type { BeginInput, Fence, FinishOutcome, RecordKey, Store } from '../store/store.js';
import type { BudgetConfig } from '../config/leash-schema.js';
import { budgetNameOf, budgetsFor, limitRefused } from '../leash/budgets.js';
import { claimRecord, derivedKey, type ClaimDeps } from './claim.js';
import { callFingerprint, intentClaim, writeCharges, writeIntent } from './leash-claim.js';
import { requestFingerprint } from './request-fingerprint.js';
import { checkPolicy } from '../leash/policy.js';
import { findKey, keyHash } from './key.js';
import { keepLease } from './lease.js';
import { chooseOperation, type Operation } from './operation.js';
import { ambiguityReason, isAmbiguous, writeRetryable } from './outcome.js';
import { answerFromRecord } from './record-answer.js';
import { agentOf, scopeOf } from './scope.js';
import { settlement } from './settlement.js';
import { storeSteps } from './store-steps.js';
import type { WriteLine, WriteRequest, WriteResult } from './write.js';

export interface GuardDeps {
  config: Config;
  store: Store;
  log: Logger;
  kit: RetryKit;
  metrics: Metrics;
  /** Keys the HMAC of generated upstream keys; random per process is enough (the record keeps the result). */
  secret?: Buffer;
  alerts?: Alerts;
}

const LEASE_MARGIN_MS = 5_000;

/** One write on its way: the headers and line facts gathered so far. */
interface Run {
  req: WriteRequest;
  target: AttemptTarget;
  headers: Record<string, string>;
  line: WriteLine;
  startedAt: number;
}

export function createGuard(deps: GuardDeps): (req: WriteRequest) => Promise<WriteResult> {
  const { config, store, log, kit, metrics } = deps;
  const secret = deps.secret ?? randomBytes(32);
  const steps = storeSteps(store, metrics, log, config.store.commandTimeoutMs);
  const claimDeps: ClaimDeps = { store, steps, log, kit, secret };
  const ended = writeEvents({ store, log, alerts: deps.alerts ?? NO_ALERTS, namespace: config.namespace });
  // Budgets span upstreams (DESIGN §10.2): each upstream's are picked once.
  const budgets = new Map(config.upstreams.map((u) => [u.name, budgetsFor(config.budgets, u.name)] as const));
  const budgetsOf = (upstream: string): readonly BudgetConfig[] => budgets.get(upstream) ?? [];

  return async function guardedWrite(req: WriteRequest): Promise<WriteResult> {
    const run: Run = {
      req,
      headers: {},
      line: { keySource: null, keyHash: null, attempts: 0, outcome: null },
      startedAt: Date.now(),
      target: { upstream: req.upstream, dispatcher: req.dispatcher, scope: '', kit, metrics, log, trace: req.trace },
    };
    let result: WriteResult;
    try {
      result = await protect(run);
    } catch (err) {
      if (!(err instanceof WriteguardError)) throw err;
      result = { kind: 'error', error: err, headers: run.headers, line: run.line };
    }
    if (run.target.scope !== '') await ended({ upstream: req.upstream, scope: run.target.scope, keyHash: run.line.keyHash, result });
    return result;
  };

  async function protect(run: Run): Promise<WriteResult> {
    const { req } = run;
    const idem = req.idempotency;
    const agent = agentOf(
      config.identity,
      config.identity.agentIdHeader === null ? undefined : valuesOf(req.rawHeaders, config.identity.agentIdHeader),
    );
    run.target.scope = scopeOf(config.namespace, agent);
    if (req.upstream.breaker !== null) {
      const until = await steps.step('paused', () => store.pausedUntil(run.target.scope, req.upstream.name), undefined, req.trace);
      if (until !== null) throw agentPaused(until, Date.now(), req.upstream.breaker);
    }
    let parsed: { json: unknown } | null = null;
    const bodyJson = (): unknown => (parsed ??= { json: parseLossless(req.body) }).json;
    const fp = req.call === null ? requestFingerprint(req, config.identity) : callFingerprint(req, req.call, config.identity, bodyJson());
    const tool = req.call?.tool ?? null;
    // Allow-lists come before anything is claimed or sent: a refused write leaves no trace in the store.
    const refused =
      req.policy.length === 0 ? null : checkPolicy(req.policy, { method: req.method, apiPath: req.apiPath, tool }, bodyJson());
    if (refused !== null) {
      metrics.leashRefusal(req.upstream.name, refused.code);
      throw refused;
    }
    const found = findKey({
      headerValues: valuesOf(req.rawHeaders, idem.header.toLowerCase()),
      headerName: idem.header,
      keyFrom: idem.keyFrom,
      json: bodyJson,
    });
    const intentHeader = req.headers['idempotency-intent'];
    const signals = {
      // A tool call cannot say Idempotency-Intent: its repeats join (a new key argument value makes a second one).
      intent: req.call !== null ? 'retry' : typeof intentHeader === 'string' ? intentHeader : undefined,
      sdkRetry: Number(req.headers['x-stainless-retry-count'] ?? 0) >= 1,
    };
    // A keyless write with intent fields is keyed by its intent: reworded or reordered, it is the same operation.
    const intent = req.intent === null ? null : writeIntent(req, config.identity, bodyJson());
    const op = chooseOperation(found, idem, intent ?? fp, signals);
    if (op === null) return unprotected(run);
    // What budgets and approvals match on (not a copy of the whole request: every write pays for that).
    const write = { upstream: req.upstream, method: req.method, apiPath: req.apiPath, tool };
    const charges = leashed(req.upstream.name, () => writeCharges(budgetsOf(req.upstream.name), write, bodyJson, Date.now()));
    const approval = req.approval.length === 0 ? null : leashed(req.upstream.name, () => approvalNeeded(req.approval, write, bodyJson));

    // Nothing is claimed for a request refused here.
    await passCooldown(kit, run.target.scope, req.upstream, run.startedAt);
    let pointer: BeginInput['pointer'] = null;
    if (op.source === 'derived') ({ key: op.key, pointer } = await derivedKey(claimDeps, req, run.target.scope, op));
    const recordKey: RecordKey = { scope: run.target.scope, upstream: req.upstream.name, keyHash: keyHash(op.key) };
    run.line.keySource = op.source;
    run.line.keyHash = recordKey.keyHash.slice(0, 32);
    run.headers[idem.header] = op.key;

    const leaseMs = idem.leaseMs ?? req.upstream.timeoutMs + LEASE_MARGIN_MS;
    const owner = randomUUID();
    const begun = await claimRecord(claimDeps, {
      req,
      op,
      key: recordKey,
      // A keyless write's record is its intent: a signalled retry whose free text changed still joins.
      fingerprint: op.source === 'derived' && intent !== null ? intent : fp,
      owner,
      leaseMs,
      intent: intentClaim(req, intent, op, signals),
      charges,
      pointer,
      approval,
    });
    if (begun.outcome === 'acquired') {
      const { record } = begun;
      // A reclaimed record (an unknown outcome re-sent to an upstream that dedupes) may have run before.
      const earlier = mayHaveSent(record) ? `an earlier attempt may have run (${record.reason ?? 'sent'})` : null;
      const fence = { key: recordKey, owner, epoch: record.epoch, leash: record.leash };
      return sendWithinLease(run, op, fence, record.upstreamKey, leaseMs, earlier);
    }
    if (begun.outcome === 'limit_exceeded') {
      metrics.leashRefusal(req.upstream.name, 'limit_exceeded');
      metrics.budgetRefusal(budgetNameOf(begun.refusal.bucket));
      const error = limitRefused(budgetsOf(req.upstream.name), begun.refusal, req.method, req.apiPath);
      return { kind: 'error', error, headers: run.headers, line: run.line };
    }
    // Nobody decided in time: its holds go back before the agent hears so.
    if (begun.outcome === 'approval_expired' && begun.record.approval?.state === 'pending')
      await steps.step('approval', () => store.decideApproval(recordKey, begun.record, 'expire'), op.key, req.trace);
    const answered = answerFromRecord(begun, op.key, recordKey);
    if (answered.requestId !== null) run.line.upstreamRequestId = answered.requestId;
    // Only an answer actually replayed is logged and counted as one (not a completed write with none stored).
    if (answered.kind === 'refused') return { kind: 'error', error: answered.error, headers: run.headers, line: run.line };
    run.line.outcome = 'replayed';
    run.headers['idempotent-replayed'] = 'true';
    run.headers['x-idempotency-replayed'] = 'true';
    return { kind: 'replay', answer: answered.answer, requestId: answered.requestId, headers: run.headers, line: run.line };
  }

  /** A leash check that may refuse (amount_invalid, a per-write cap), counted like the store's refusals. */
  function leashed<T>(upstream: string, check: () => T): T {
    try {
      return check();
    } catch (err) {
      if (err instanceof WriteguardError) {
        metrics.leashRefusal(upstream, err.code);
        if (err.code === 'limit_exceeded') metrics.budgetRefusal(String(err.extensions['budget']));
      }
      throw err;
    }
  }

  /** `missing: allow`: sent once, unprotected; the answer goes back as it came. */
  async function unprotected(run: Run): Promise<WriteResult> {
    const { req } = run;
    run.line.keySource = 'none';
    run.line.attempts = 1;
    const result = await attemptOnce(run.target, 'write', {
      origin: req.origin,
      path: req.path,
      method: req.method,
      headers: req.headers,
      body: req.body,
      timeoutMs: req.upstream.timeoutMs,
    });
    if (result.kind !== 'answer') throw attemptFailureError(result, 'write');
    return {
      kind: 'answer',
      answer: result,
      found: extractAnswer(result.status, result.headers, result.body, req.upstream),
      headers: run.headers,
      line: run.line,
    };
  }

  /**
   * Sends inside the lease, retrying only what cannot duplicate the write (answers proving it did not
   * run; or, when the upstream dedupes on the key, ambiguous ones), always with the same key and bytes.
   */
  async function sendWithinLease(
    run: Run,
    op: Operation,
    fence: Fence,
    upstreamKey: string,
    leaseMs: number,
    mayHaveRun: string | null,
  ): Promise<WriteResult> {
    const { req } = run;
    const idem = req.idempotency;
    const headers: HeaderMap = { ...req.headers };
    const headerName = idem.header.toLowerCase();
    delete headers[headerName];
    if (idem.forwardKey) headers[headerName] = upstreamKey;

    const markSent = (): Promise<'ok' | 'stale'> =>
      steps.step('markSent', () => steps.resendable('markSent', () => store.markSent(fence, leaseMs)), op.key, req.trace);
    const marked = await markSent().catch(async (err: unknown) => {
      await giveBack(fence);
      throw err;
    });
    if (marked === 'stale') {
      // The claim lapsed before a byte left: someone else may hold it now.
      await giveBack(fence);
      throw new WriteguardError('idempotency_key_in_use', 'the claim on this key lapsed before sending; retry shortly', {
        idempotencyKey: op.key,
        headers: { 'retry-after': '1' },
      });
    }
    const lease = keepLease(store, metrics, log, fence, leaseMs);
    const body = req.call?.bodyFor(upstreamKey) ?? req.body;
    if (body !== req.body) headers['content-length'] = String(body.length);
    // Why an attempt so far may have run: no later answer can prove it did not.
    let earlier = mayHaveRun;
    let loop: LoopResult<AttemptResult>;
    metrics.writeStarted();
    try {
      loop = await retryLoop<AttemptResult>({
        policy: req.upstream.retry,
        budget: kit.budgets.get(req.upstream.name)!,
        startedAt: run.startedAt,
        signal: kit.signal,
        attempt: (n) => {
          run.line.attempts = n;
          const request = { origin: req.origin, path: req.path, method: req.method, headers, body, timeoutMs: req.upstream.timeoutMs };
          const { call } = req;
          if (call === null) return attemptOnce(run.target, 'write', request);
          return attemptOnce(run.target, 'write', { ...request, watch: call.watch() }).then((result) => call.settle(result));
        },
        retryable: (result) => {
          if (isAmbiguous(result, idem)) earlier ??= `attempt ${run.line.attempts} may have run (${ambiguityReason(result)})`;
          return writeRetryable(result, idem);
        },
        headersOf: (result) => (result.kind === 'answer' ? result.headers : null),
        // No new attempt after the agent left, or once the lease is no longer ours.
        mayContinue: () => !lease.lost() && !req.client.destroyed,
        beforeRetry: async () => (await markSent().catch(() => 'stale' as const)) === 'ok',
        onRetry: (n, delayMs, result) => noteRetry(run.target, 'write', n, delayMs, result),
      });
    } finally {
      lease.stop();
      metrics.writeEnded();
    }
    return settle(run, op, fence, loop, earlier);
  }

  async function settle(
    run: Run,
    op: Operation,
    fence: Fence,
    loop: LoopResult<AttemptResult>,
    earlier: string | null,
  ): Promise<WriteResult> {
    const { req } = run;
    const plan = settlement({
      loop,
      idempotency: req.idempotency,
      upstream: req.upstream,
      earlier,
      derived: op.source === 'derived',
      key: op.key,
    });
    if (plan.replaced !== null) {
      run.line.upstreamCode = plan.replaced.code;
      run.line.upstreamRequestId = plan.replaced.requestId;
    }
    const stored = await finish(run, fence, plan.finish);
    if (plan.finish.kind === 'unknown') run.line.outcome = 'unknown';
    else if (plan.finish.kind === 'release' && stored) run.line.outcome = 'released';
    if (plan.reply.kind === 'error') throw plan.reply.error;
    if (plan.reply.retryAfter !== null) run.headers['retry-after'] = plan.reply.retryAfter;
    return { kind: 'answer', answer: plan.reply.answer, found: plan.reply.found, headers: run.headers, line: run.line };
  }

  /**
   * A claim given up before a byte left: released with its budget holds, best effort (fenced: a
   * claim another writer took is left alone). Kept, an in-flight record never expires, and a key
   * that is never retried would hold its budget for good.
   */
  async function giveBack(fence: Fence): Promise<void> {
    await store.finish(fence, { kind: 'release' }).catch(() => undefined);
  }

  /** True when the store holds this outcome. Nothing is reported as stored that isn't. */
  async function finish(run: Run, fence: Fence, outcome: FinishOutcome): Promise<boolean> {
    try {
      const step = await steps.timed('finish', () => store.finish(fence, outcome), run.req.trace);
      if (step === 'ok') return true;
      log.warn(
        { upstream: fence.key.upstream, outcome: outcome.kind },
        'finish refused: a newer attempt owns the record, or the store lost it',
      );
    } catch (err) {
      // The lease will lapse in phase `sent` → outcome_unknown.
      log.warn(
        { err: { message: (err as Error).message } },
        'finish not confirmed: if it did not apply, the record becomes outcome_unknown when its lease lapses',
      );
    }
    run.headers['writeguard-stored'] = 'false';
    return false;
  }
}
