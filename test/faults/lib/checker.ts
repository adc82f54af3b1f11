// The checker: every logical operation the suite issues, every HTTP exchange of it (captured by a
// fetch wrapper every client goes through), a reconcile pass in which the agent retries what is not
// settled, and the verdict — at most one execution upstream, and a known end state for the agent:
// a final answer, a replay, outcome_unknown held as a dead letter, or a clear error.
import { keyHash } from '../../../src/idempotency/key.js';
import type { RedisStore } from '../../../src/store/index.js';
import type { IdemRecord } from '../../../src/store/store.js';
import type { ChaosUpstream } from './chaos-upstream.js';
import { sleep } from './procs.js';

export interface Exchange {
  /** The writeguard origin the request went to (http://127.0.0.1:port). */
  origin: string;
  method: string;
  path: string;
  status: number | null;
  /** Transport failure (no HTTP answer). */
  error: string | null;
  /** The ids a log line may carry: the upstream's `request-id`, writeguard's `x-request-id`. */
  requestIds: string[];
  code: string | null;
  replayed: boolean;
  echoedKey: string | null;
  body: string;
  /** The request was refused before it reached writeguard (connection refused). */
  notReached: boolean;
  at: number;
}

export type EndKind = 'final' | 'unknown' | 'error' | 'none';

export interface Op {
  id: string;
  agent: string;
  client: string;
  /** The config upstream the write is recorded under. */
  upstream: string;
  /** Base URL per writeguard instance for this upstream (a reconcile retry may use any). */
  bases: string[];
  path: string;
  key: string | null;
  keySource: 'client' | 'derived';
  contentType: string | null;
  sentBody: string | null;
  exchanges: Exchange[];
  /** Headers every request of this op carries (agent id, planted secrets). */
  headers: Record<string, string>;
}

/** Planted in requests: none may appear in any log. */
export const SECRETS = {
  auth: 'sk_live_PLANTEDAUTH7f3k29',
  apiKey: 'PLANTEDAPIKEY93jd8s',
  agentKey: 'PLANTEDAGENTKEY4j2k1',
  queryToken: 'PLANTEDQUERYTOKEN8d7f6',
  stripeKey: 'sk_test_PLANTEDSTRIPE5k2m1',
  body: 'PLANTEDBODYSECRET2n4b6',
} as const;

export function agentHeaders(agent: string): Record<string, string> {
  return { 'x-agent-id': agent, authorization: `Bearer ${SECRETS.auth}`, 'x-api-key': SECRETS.apiKey, 'x-agent-key': SECRETS.agentKey };
}

function headerPairs(h: unknown): Headers {
  try {
    return new Headers(h as ConstructorParameters<typeof Headers>[0]);
  } catch {
    return new Headers();
  }
}

/** The request body as text, however the client handed it over (string, bytes, or a Request). */
async function bodyText(input: string | URL | Request, init: RequestInit | undefined): Promise<string | null> {
  const body = init?.body;
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString('utf8');
  if (body instanceof ArrayBuffer) return Buffer.from(body).toString('utf8');
  if (body instanceof URLSearchParams) return body.toString();
  if (body === undefined && input instanceof Request && input.body !== null) return input.clone().text();
  return null;
}

function describeError(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 4 && e !== null && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return (err as Error)?.name ?? 'error';
}

/** All HTTP exchanges of a scenario, by writeguard origin: the log check's ground truth. */
export class Traffic {
  readonly exchanges: Exchange[] = [];
  /** Requests sent per origin (attempted: reached or not). */
  readonly sent = new Map<string, number>();

  /** A fetch that records every exchange (for `op`, when given) and adds `extra` headers. */
  fetchFor(op: Op | null, extra: Record<string, string> = {}): typeof fetch {
    return async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
      const headers = headerPairs(init?.headers ?? (input instanceof Request ? input.headers : undefined));
      for (const [k, v] of Object.entries(extra)) if (!headers.has(k)) headers.set(k, v);
      const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
      if (op !== null) {
        if (op.key === null && headers.has('idempotency-key')) op.key = headers.get('idempotency-key');
        if (op.sentBody === null) op.sentBody = await bodyText(input, init);
        if (op.contentType === null) op.contentType = headers.get('content-type');
      }
      this.sent.set(url.origin, (this.sent.get(url.origin) ?? 0) + 1);
      const ex: Exchange = {
        origin: url.origin,
        method,
        path: url.pathname,
        status: null,
        error: null,
        requestIds: [],
        code: null,
        replayed: false,
        echoedKey: null,
        body: '',
        notReached: false,
        at: Date.now(),
      };
      this.exchanges.push(ex);
      op?.exchanges.push(ex);
      let res: Response;
      try {
        res = await fetch(input instanceof Request ? input : url, { ...init, headers });
      } catch (err) {
        ex.error = describeError(err);
        ex.notReached = ex.error === 'ECONNREFUSED';
        throw err;
      }
      ex.status = res.status;
      for (const name of ['request-id', 'x-request-id']) {
        const v = res.headers.get(name);
        if (v !== null) ex.requestIds.push(v);
      }
      ex.replayed = res.headers.get('idempotent-replayed') === 'true';
      ex.echoedKey = res.headers.get('idempotency-key');
      if (op !== null && op.keySource === 'derived' && ex.echoedKey !== null) op.key = ex.echoedKey;
      try {
        ex.body = await res.clone().text();
        const parsed = JSON.parse(ex.body) as { code?: unknown; error?: { code?: unknown } };
        const code = typeof parsed.code === 'string' ? parsed.code : typeof parsed.error?.code === 'string' ? parsed.error.code : null;
        ex.code = code;
      } catch (err) {
        if (ex.body === '') ex.error = `body: ${describeError(err)}`;
      }
      return res;
    };
  }
}

export function endOf(op: Op): { kind: EndKind; ex: Exchange | null } {
  const answered = op.exchanges.filter((e) => e.status !== null);
  const final = answered.find((e) => e.status! >= 200 && e.status! < 300);
  if (final !== undefined) return { kind: 'final', ex: final };
  const unknown = answered.find((e) => e.code === 'outcome_unknown');
  if (unknown !== undefined) return { kind: 'unknown', ex: unknown };
  const last = answered.at(-1);
  if (last !== undefined) return { kind: 'error', ex: last };
  return { kind: 'none', ex: null };
}

/** Answers worth the agent's retry: in use, store down, draining, rate limited, unreachable, or no answer. */
function worthRetry(ex: Exchange | null): boolean {
  if (ex === null || ex.status === null) return true;
  return (
    ([409, 429, 503].includes(ex.status) &&
      ex.code !== 'possible_duplicate' &&
      ex.code !== 'idempotency_key_expired' &&
      ex.code !== 'response_not_replayable') ||
    ex.code === 'upstream_unreachable'
  );
}

export interface Verdict {
  operations: number;
  executions: number;
  duplicates: number;
  lost: number;
  ends: Record<EndKind, number>;
  problems: string[];
}

export class Checker {
  readonly ops: Op[] = [];
  readonly traffic = new Traffic();
  constructor(
    readonly scenario: string,
    readonly namespace = 'live',
  ) {}

  op(
    spec: Omit<Op, 'exchanges' | 'key' | 'sentBody' | 'contentType' | 'headers'> & {
      key?: string | null;
      headers?: Record<string, string>;
    },
  ): Op {
    const op: Op = { key: null, sentBody: null, contentType: null, exchanges: [], headers: agentHeaders(spec.agent), ...spec } as Op;
    if (spec.key !== undefined) op.key = spec.key;
    this.ops.push(op);
    return op;
  }

  fetchFor(op: Op): typeof fetch {
    return this.traffic.fetchFor(op, op.headers);
  }

  /** Whether the agent would still retry this op (no final answer, no outcome_unknown, a retryable last answer). */
  isOpen(op: Op): boolean {
    const end = endOf(op);
    return (end.kind === 'error' || end.kind === 'none') && worthRetry(end.ex) && op.sentBody !== null;
  }

  /** Sends the op again as the agent would: same key and bytes (a keyless one as `Idempotency-Intent: retry`). */
  async resend(op: Op, base: string): Promise<void> {
    const headers: Record<string, string> = { ...op.headers };
    if (op.contentType !== null) headers['content-type'] = op.contentType;
    if (op.keySource === 'client' && op.key !== null) headers['idempotency-key'] = op.key;
    else headers['idempotency-intent'] = 'retry';
    try {
      const res = await this.fetchFor(op)(`${base}${op.path}`, {
        method: 'POST',
        headers,
        body: op.sentBody!,
        signal: AbortSignal.timeout(15_000),
      });
      await res.arrayBuffer();
    } catch {
      // recorded
    }
  }

  /** Retries one op until it settles, bounded. */
  async retryOp(op: Op, rounds: number, pauseMs: number, pickBase: (round: number) => string): Promise<void> {
    for (let round = 0; round < rounds && this.isOpen(op); round++) {
      await sleep(pauseMs);
      await this.resend(op, pickBase(round));
    }
  }

  /**
   * The agent's own retries, later: every op not yet final or unknown is sent again, same key and
   * bytes, until it settles; bounded in count.
   */
  async settle(options: { rounds?: number; pauseMs?: number } = {}): Promise<void> {
    const rounds = options.rounds ?? 12;
    for (let round = 0; round < rounds; round++) {
      const open = this.ops.filter((op) => this.isOpen(op));
      if (open.length === 0) return;
      await Promise.all(open.map((op, i) => this.resend(op, op.bases[(round + i) % op.bases.length]!)));
      await sleep(options.pauseMs ?? 700);
    }
  }

  /** The verdict for every op, from the upstream's counts and the store's records. */
  async verify(chaos: ChaosUpstream, store: RedisStore | null): Promise<Verdict> {
    const problems: string[] = [];
    const ends: Record<EndKind, number> = { final: 0, unknown: 0, error: 0, none: 0 };
    let executions = 0;
    let duplicates = 0;
    let lost = 0;
    let deadLetters: Set<string> | null = null;
    if (store !== null) {
      try {
        deadLetters = new Set((await store.deadLetters(100_000)).map((d) => `${d.key.scope}|${d.key.upstream}|${d.key.keyHash}`));
      } catch (err) {
        problems.push(`dead letters could not be listed: ${(err as Error).message}`);
      }
    }
    const recordOf = async (op: Op): Promise<IdemRecord | null | undefined> => {
      if (store === null || op.key === null) return undefined;
      try {
        return await store.get({ scope: `${this.namespace}:${op.agent}`, upstream: op.upstream, keyHash: keyHash(op.key) });
      } catch {
        return undefined;
      }
    };
    for (const op of this.ops) {
      const n = chaos.executions(op.id);
      executions += n;
      if (n > 1) {
        duplicates += n - 1;
        problems.push(`${op.id} (${op.client}): executed ${n} times upstream`);
      }
      const end = endOf(op);
      ends[end.kind]++;
      const oks = op.exchanges.filter((e) => e.status !== null && e.status >= 200 && e.status < 300);
      const execIds = new Set(oks.map((e) => /"exec":"([^"]+)"/.exec(e.body)?.[1] ?? '?'));
      if (execIds.size > 1) problems.push(`${op.id}: its answers name ${execIds.size} different executions`);
      for (const e of oks)
        if (!e.body.includes(op.id)) problems.push(`${op.id}: a 2xx answer is not this operation's (${e.body.slice(0, 80)})`);
      const record = end.kind === 'final' ? undefined : await recordOf(op);
      const accounted = (r: IdemRecord | null | undefined): boolean =>
        r !== undefined &&
        r !== null &&
        (r.state === 'completed' || r.state === 'outcome_unknown' || (r.state === 'in_flight' && r.phase === 'sent'));
      switch (end.kind) {
        case 'final':
          if (n === 0) {
            lost++;
            problems.push(`${op.id}: the agent got a 2xx but the upstream never executed it`);
          }
          break;
        case 'unknown': {
          if (store === null) break;
          if (record === null || record === undefined || (record.state !== 'outcome_unknown' && record.state !== 'completed')) {
            lost++;
            problems.push(
              `${op.id}: answered outcome_unknown, but its record is ${record === null ? 'gone' : record === undefined ? 'unreadable' : record.state}`,
            );
          } else if (
            record.state === 'outcome_unknown' &&
            deadLetters !== null &&
            !deadLetters.has(`${this.namespace}:${op.agent}|${op.upstream}|${keyHash(op.key!)}`)
          ) {
            lost++;
            problems.push(`${op.id}: outcome_unknown but not listed as a dead letter`);
          }
          break;
        }
        case 'error':
          if (n > 0 && store !== null && !accounted(record)) {
            lost++;
            problems.push(
              `${op.id}: executed upstream, the agent got ${end.ex?.status} ${end.ex?.code ?? ''}, and the record is ${record === null ? 'gone' : (record?.state ?? 'unreadable')}`,
            );
          }
          break;
        case 'none':
          lost++;
          problems.push(
            `${op.id} (${op.client}): no answer at all (${op.exchanges.map((e) => e.error).join(',') || 'never sent'}); executed ${n}`,
          );
          break;
      }
    }
    return { operations: this.ops.length, executions, duplicates, lost, ends, problems };
  }
}
