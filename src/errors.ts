// Every error writeguard itself answers with: one table, one class, one body shape (RFC 9457).

export type RetryStrategy = 'no_retry' | 'fix_request' | 'backoff' | 'reconcile' | 'after_approval';

interface CodeSpec {
  readonly status: number;
  readonly title: string;
  readonly retryStrategy: RetryStrategy;
}

export const ERROR_CODES = {
  no_route: { status: 404, title: 'No upstream route matches this path', retryStrategy: 'fix_request' },
  route_not_allowed: { status: 403, title: 'This route is not allowed for this upstream', retryStrategy: 'fix_request' },
  identity_missing: { status: 400, title: 'The agent identity header is missing', retryStrategy: 'fix_request' },
  body_too_large: { status: 413, title: 'Request body is larger than allowed', retryStrategy: 'fix_request' },
  headers_too_large: { status: 431, title: 'Request headers are too large or too many', retryStrategy: 'fix_request' },
  bad_request: { status: 400, title: 'Malformed request', retryStrategy: 'fix_request' },
  idempotency_key_missing: { status: 400, title: 'An Idempotency-Key is required for this request', retryStrategy: 'fix_request' },
  idempotency_key_invalid: { status: 400, title: 'The Idempotency-Key is invalid', retryStrategy: 'fix_request' },
  idempotency_key_reuse_mismatch: {
    status: 422,
    title: 'The Idempotency-Key was used with a different request',
    retryStrategy: 'fix_request',
  },
  idempotency_key_in_use: { status: 409, title: 'A request with this Idempotency-Key is in progress', retryStrategy: 'backoff' },
  idempotency_key_expired: { status: 409, title: 'The stored result for this Idempotency-Key has expired', retryStrategy: 'no_retry' },
  possible_duplicate: { status: 409, title: 'An identical request was made recently', retryStrategy: 'fix_request' },
  response_not_replayable: { status: 409, title: 'The original response is not stored for replay', retryStrategy: 'no_retry' },
  outcome_unknown: { status: 502, title: 'The upstream outcome of this write is unknown', retryStrategy: 'reconcile' },
  upstream_unreachable: { status: 502, title: 'The upstream could not be reached; nothing was sent', retryStrategy: 'backoff' },
  upstream_timeout: { status: 504, title: 'The upstream did not answer in time', retryStrategy: 'backoff' },
  rate_limited: { status: 429, title: 'Rate limited', retryStrategy: 'backoff' },
  store_unavailable: { status: 503, title: 'The idempotency store is unavailable; writes are refused', retryStrategy: 'backoff' },
  recipient_not_allowed: { status: 403, title: 'The recipient of this write is not in the allow-list', retryStrategy: 'no_retry' },
  asset_not_allowed: { status: 403, title: 'The asset or currency of this write is not in the allow-list', retryStrategy: 'no_retry' },
  policy_violation: { status: 403, title: 'This write breaks a policy rule', retryStrategy: 'no_retry' },
  limit_exceeded: { status: 403, title: 'This write would exceed a spending or count budget', retryStrategy: 'no_retry' },
  approval_required: { status: 403, title: 'This write needs a person’s approval before it is sent', retryStrategy: 'after_approval' },
  approval_pending: { status: 403, title: 'This write is still waiting for a person’s approval', retryStrategy: 'after_approval' },
  approval_denied: { status: 403, title: 'A person denied this write', retryStrategy: 'no_retry' },
  approval_expired: { status: 403, title: 'Nobody approved this write in time', retryStrategy: 'no_retry' },
  agent_paused: { status: 423, title: "This agent's writes are paused after repeated refusals", retryStrategy: 'no_retry' },
  amount_invalid: { status: 400, title: 'The amount of this write is missing or malformed', retryStrategy: 'fix_request' },
  store_full: { status: 503, title: 'The idempotency store is full; new writes are refused', retryStrategy: 'backoff' },
  draining: { status: 503, title: 'writeguard is shutting down', retryStrategy: 'backoff' },
  // The admin port's own (operators' requests, never the agent's).
  unauthorized: { status: 401, title: 'A valid admin bearer token is required', retryStrategy: 'fix_request' },
  not_found: { status: 404, title: 'No such record or admin route', retryStrategy: 'fix_request' },
  invalid_agent: { status: 400, title: 'The agent id is invalid', retryStrategy: 'fix_request' },
  invalid_resolution: { status: 400, title: 'The dead letter resolution is invalid', retryStrategy: 'fix_request' },
  stale: { status: 409, title: 'The record is not an unresolved dead letter at that epoch', retryStrategy: 'fix_request' },
  // A bug in writeguard, never an upstream's answer: nothing is known to have been sent.
  internal_error: { status: 500, title: 'writeguard failed internally', retryStrategy: 'no_retry' },
} as const satisfies Record<string, CodeSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

const TYPE_BASE = 'https://writeguard.dev/errors/';

export interface ErrorOptions {
  /** Overrides the table's status where one code has two (outcome_unknown: 502, or 504 on a timeout). */
  status?: number;
  idempotencyKey?: string;
  /** Extra response headers, e.g. Retry-After. */
  headers?: Record<string, string>;
  /** Problem members of this code's own (a budget's name, limit, left and reset), added to the body as they are. */
  extensions?: Record<string, string | number | null>;
  cause?: unknown;
}

export class WriteguardError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly idempotencyKey: string | undefined;
  readonly headers: Record<string, string>;
  readonly extensions: Record<string, string | number | null>;

  constructor(code: ErrorCode, detail: string, options: ErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WriteguardError';
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.idempotencyKey = options.idempotencyKey;
    this.headers = options.headers ?? {};
    this.extensions = options.extensions ?? {};
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  retry_strategy: RetryStrategy;
  request_id: string;
  idempotency_key?: string;
  /** The member SDKs read: stripe-node treats a JSON body without `error` as success. */
  error: { type: string; code: ErrorCode; message: string };
  [extension: string]: unknown;
}

export function toProblem(err: WriteguardError, requestId: string): Problem {
  const spec = ERROR_CODES[err.code];
  const problem: Problem = {
    type: TYPE_BASE + err.code,
    title: spec.title,
    status: err.status,
    detail: err.message,
    code: err.code,
    retry_strategy: spec.retryStrategy,
    request_id: requestId,
    error: { type: sdkErrorType(err), code: err.code, message: err.message },
  };
  if (err.idempotencyKey !== undefined) problem.idempotency_key = err.idempotencyKey;
  // After the standard members, never over them.
  for (const [name, value] of Object.entries(err.extensions)) if (!(name in problem)) problem[name] = value;
  return problem;
}

// The `error.type` families SDKs know (Stripe's vocabulary, which openai-node ignores harmlessly).
function sdkErrorType(err: WriteguardError): string {
  if (err.code.startsWith('idempotency_') || err.code === 'possible_duplicate') return 'idempotency_error';
  if (err.code === 'rate_limited') return 'rate_limit_error';
  return err.status >= 500 ? 'api_error' : 'invalid_request_error';
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';
