// A protected write as the proxy hands it to the guard, and what the guard hands back: an answer to
// pass on, a replay, or a refusal, with the headers and response-line facts that go with it.
import type { Dispatcher } from 'undici';
import type { ApprovalRule, IdempotencyConfig, IntentConfig, ReconcileConfig, UpstreamConfig } from '../config/schema.js';
import type { WriteguardError } from '../errors.js';
import type { Answer, AnswerWatch, AttemptResult } from '../http/attempt.js';
import type { HeaderMap } from '../http/headers.js';
import type { KeySource } from '../observe/exchange.js';
import type { PolicyRule } from '../leash/policy.js';
import type { Extracted } from '../observe/extract.js';
import type { RequestTrace } from '../observe/trace-types.js';

/** A write as the proxy hands it over: the body already buffered and bounded. */
export interface WriteRequest {
  method: string;
  /** The agent's raw header lines (a header sent twice is two values). */
  rawHeaders: readonly string[];
  /** The headers as they go upstream (hygiene applied, Host rewritten). */
  headers: HeaderMap;
  /** Path and query as the API documents them (prefix stripped). */
  apiPath: string;
  /** Path and query as the upstream receives them. */
  path: string;
  /** The request path as logged and shown to operators (no query string). */
  logPath: string;
  body: Buffer;
  upstream: UpstreamConfig;
  dispatcher: Dispatcher;
  origin: string;
  /** The upstream's idempotency settings with the matching route's overrides. */
  idempotency: IdempotencyConfig;
  /** The allow-list rules that apply to this write's upstream and route. */
  policy: readonly PolicyRule[];
  /** The approval thresholds that apply to this write's upstream and route (DESIGN §10.4). */
  approval: readonly ApprovalRule[];
  /** The intent fields of this write's route or upstream (DESIGN §10.1), or null. */
  intent: IntentConfig | null;
  /** The matched `routes[]` pattern, or null: the intent then names the path. */
  routePattern: string | null;
  /** An MCP tool call (DESIGN §11), or null for an HTTP write. */
  call: CallHooks | null;
  /** The route's status-check request for unknown outcomes, its path as the upstream receives it. */
  reconcile: { config: ReconcileConfig; path: string } | null;
  /** The agent's side of the exchange (its response): once destroyed, the agent has gone — no new attempt starts and no wait goes on. */
  client: { readonly destroyed: boolean };
  /** The request's span (store steps, attempts); null when tracing is off. */
  trace: RequestTrace | null;
}

/** How a tool call differs from an HTTP write on the write path: its fingerprint, body and answer. */
export interface CallHooks {
  /** Matched by "TOOL name" policy rules and budgets. */
  tool: string;
  /** The body fields whose canonical values are the fingerprint (not the whole body: never the JSON-RPC id). */
  fingerprintFields: readonly string[];
  /** The body sent under this upstream key. */
  bodyFor(upstreamKey: string): Buffer;
  /** A fresh watch for each attempt's answer (an event stream relayed as it comes). */
  watch(): AnswerWatch;
  /** What an attempt's result proves for this call (a transport refusal: nothing ran). */
  settle(result: AttemptResult): AttemptResult;
}

/** What the response line says of a protected write. */
export interface WriteLine {
  keySource: KeySource | null;
  keyHash: string | null;
  attempts: number;
  outcome: 'replayed' | 'released' | 'unknown' | null;
  /** The upstream's request id and code, when known (an answer, or the record's). */
  upstreamRequestId?: string | null;
  upstreamCode?: string | null;
}

export type WriteResult = { headers: Record<string, string>; line: WriteLine } &
  /** The upstream's answer, passed back (`found`: what was read from it). */
  (
    | { kind: 'answer'; answer: Answer; found: Extracted }
    /** A stored answer, replayed. */
    | { kind: 'replay'; answer: Answer; requestId: string | null }
    | { kind: 'error'; error: WriteguardError }
  );
