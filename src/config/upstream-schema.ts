// One upstream's section: where it is, how its writes are protected (idempotency, per-route
// overrides, reconcile probes) and retried. Described field by field, as schema.ts is.
import { z } from 'zod';
import { mcpSchema } from './mcp-schema.js';
import { bodyField, headerName, httpUrl, method, port, routePattern, writePattern } from './fields.js';
import { intentSchema } from './leash-schema.js';

/** `header`, or `body:referenceId` / `body:meta.idempotency_key` for a key carried in a JSON body field. */
const keySource = z.string().regex(/^(header|body:[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*)$/, { error: 'must be "header" or "body:<field>"' });

// The fields without defaults serve per-route overrides; the upstream-level section adds the defaults.
const idempotencyFields = {
  methods: z.array(method).describe('The methods treated as writes: keyed, recorded, run at most once.'),
  header: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'must be an HTTP header name' })
    .describe(
      "The request header carrying the client's idempotency key; the key used is echoed in it, and sent upstream in it with forwardKey.",
    ),
  keyFrom: z
    .array(keySource)
    .min(1)
    .describe(
      'Where the key comes from, first found wins: "header", or "body:<field>" for a JSON body field, e.g. [header, "body:referenceId"].',
    ),
  missing: z
    .enum(['derive', 'uuid', 'reject', 'allow'])
    .describe(
      "A write without a key: derive (a key from the request itself) | uuid (a random key: protects writeguard's own retries only) | " +
        'reject (400 idempotency_key_missing) | allow (forwarded unprotected).',
    ),
  deriveWindowSec: z
    .number()
    .int()
    .positive()
    .describe("How long a keyless write's SDK retries join it (and an identical new one is refused 409 possible_duplicate)."),
  fingerprint: z
    .enum(['bytes', 'canonical-json'])
    .describe('bytes | canonical-json (sorted keys, numbers exactly as written; unparsable bodies fall back to bytes).'),
  fingerprintHeaders: z
    .array(headerName)
    .describe('Request headers that are part of the fingerprint besides method, path and body, e.g. stripe-account.'),
  forwardKey: z
    .boolean()
    .describe("Send the upstream key in that header: a client's key as given, a derived or uuid one as wg_… (new per operation)."),
  upstreamHonorsKey: z
    .boolean()
    .describe('true only if the upstream itself dedupes on the key: unknown outcomes may then be re-sent with it.'),
  notExecutedStatuses: z
    .array(z.number().int().min(400).max(599))
    .describe('Answers that prove the write did not run: the key is released.'),
  ttlSec: z.number().positive().describe('How long the stored response is replayed.'),
  tombstoneSec: z
    .number()
    .min(0)
    .describe('After ttlSec, how long the fingerprint is kept: late retries get 409 idempotency_key_expired, never a re-run.'),
  onConcurrent: z
    .enum(['reject', 'wait'])
    .describe('A duplicate of a write in flight: reject (409 idempotency_key_in_use, SDKs retry) | wait (hold, then replay).'),
  waitMs: z.number().int().positive().describe('The longest onConcurrent: wait holds a duplicate before 409.'),
  maxBodyBytes: z.number().int().positive().describe('The largest write body accepted; larger gets 413 body_too_large.'),
  maxStoredResponseBytes: z
    .number()
    .int()
    .min(0)
    .describe(
      'The largest answer stored for replay; a larger answer still reaches the agent, and its replay is 409 response_not_replayable.',
    ),
  replayHeaders: z.array(headerName).describe('Response headers kept for replay, besides the request id headers.'),
  leaseMs: z
    .number()
    .int()
    .positive()
    .nullable()
    .describe('How long a claim holds without renewal; null: timeoutMs + 5 s. Must exceed timeoutMs.'),
};

type Fields = typeof idempotencyFields;
const IDEMPOTENCY_DEFAULTS: { [K in keyof Fields]: z.input<Fields[K]> } = {
  methods: ['POST', 'PUT', 'PATCH', 'DELETE'],
  header: 'Idempotency-Key',
  keyFrom: ['header'],
  missing: 'derive',
  deriveWindowSec: 600,
  fingerprint: 'bytes',
  fingerprintHeaders: ['stripe-account'],
  forwardKey: true,
  upstreamHonorsKey: false,
  notExecutedStatuses: [429],
  ttlSec: 86_400,
  tombstoneSec: 604_800,
  onConcurrent: 'reject',
  waitMs: 10_000,
  maxBodyBytes: 1_048_576,
  maxStoredResponseBytes: 1_048_576,
  replayHeaders: ['content-type', 'content-language', 'location', 'etag', 'last-modified', 'link', 'cache-control'],
  leaseMs: null,
};

const idempotencySchema = z.strictObject(
  Object.fromEntries(
    Object.entries(idempotencyFields).map(([k, field]) => [
      k,
      (field as z.ZodType).default(IDEMPOTENCY_DEFAULTS[k as keyof Fields] as never),
    ]),
  ) as {
    [K in keyof Fields]: z.ZodDefault<Fields[K]>;
  },
);

const reconcileSchema = z.strictObject({
  method: z.enum(['GET', 'HEAD']).default('GET').describe('The method of the status check.'),
  path: z
    .string()
    .regex(/^\/\S*\{key\}\S*$/, { error: 'must start with / and contain {key}' })
    .describe('The API path to ask, with {key} standing for the key the upstream received, e.g. "/v1/transfers?idempotency_key={key}".'),
  foundStatuses: z
    .array(z.number().int().min(200).max(299))
    .min(1)
    .default([200])
    .describe('Answers meaning the write ran: completed with this answer, replayed.'),
  notFoundStatuses: z
    .array(z.number().int().min(400).max(499))
    .min(1)
    .default([404])
    .describe('Answers meaning the write did not run: released, the retry runs once.'),
});

const policyMatch = z
  .union([writePattern, z.array(writePattern).min(1)])
  .transform((m) => (typeof m === 'string' ? [m] : m))
  .describe(
    'The writes the rule applies to: route patterns ("POST /v1/payments") or MCP tool calls ("TOOL create_payment"); one string is a list of one.',
  );

const policyRuleFields = {
  field: bodyField.describe('The JSON body field checked, e.g. body:destination.'),
  in: z.array(z.string().min(1)).min(1).describe('The allowed values, exact and case-sensitive; a missing field is refused too.'),
  code: z
    .enum(['recipient_not_allowed', 'asset_not_allowed', 'policy_violation'])
    .default('policy_violation')
    .describe('The 403 code a refused write gets, in the words payment APIs use.'),
};

const policyRuleSchema = z.strictObject({ match: policyMatch, ...policyRuleFields });

const approvalRuleFields = {
  amount: bodyField.describe('The field holding the amount, e.g. body:amount or arguments.amount.'),
  scale: z.number().int().min(0).max(18).default(0).describe('Decimal places of the amount ("24.50" at scale 2 is 2450).'),
  above: z
    .number()
    .int()
    .min(0)
    .max(Number.MAX_SAFE_INTEGER)
    .describe('In minor units: a write whose amount is strictly greater waits for a person (403 approval_required), nothing sent.'),
  ttlSec: z
    .number()
    .int()
    .positive()
    .default(86_400)
    .describe('How long a pending approval waits before it expires (its budget holds are then released).'),
};
const approvalRuleSchema = z.strictObject({ match: policyMatch, ...approvalRuleFields });
const routeApprovalRuleSchema = z.strictObject({ match: policyMatch.optional(), ...approvalRuleFields });
/** On a route entry the rule applies to that route's writes unless it names its own patterns. */
const routePolicyRuleSchema = z.strictObject({ match: policyMatch.optional(), ...policyRuleFields });

const routeSchema = z.strictObject({
  match: routePattern.describe('"POST /v1/payments" or "POST /v1/transfers/*", against the path as the API documents it.'),
  mode: z
    .enum(['protect', 'passthrough'])
    .default('protect')
    .describe('protect | passthrough: a POST that reads (a quote, a completion): streamed, no key, no record, no dead letter.'),
  idempotency: z
    .strictObject(idempotencyFields)
    .partial()
    .default({})
    .describe("This route's overrides of the upstream's idempotency settings, e.g. { missing: reject }."),
  policy: z
    .array(routePolicyRuleSchema)
    .default([])
    .describe(
      "Allow-lists for this route's writes, on top of the upstream's (DESIGN §10.3); a rule without match applies to the route's writes.",
    ),
  intent: intentSchema
    .nullable()
    .default(null)
    .describe(
      "What this route's writes mean, whatever their wording (DESIGN §10.1); it replaces the upstream's intent whole. " +
        "null: the upstream's applies. Not on a passthrough route (its writes are never claimed).",
    ),
  approval: z
    .array(routeApprovalRuleSchema)
    .default([])
    .describe("Approval thresholds for this route's writes, on top of the upstream's (DESIGN §10.4); without match, the route's writes."),
  reconcile: reconcileSchema
    .nullable()
    .default(null)
    .describe(
      'A status check settling an outcome_unknown write on its next retry, by the key the upstream received: ' +
        'found → completed with that answer, not found → released. null: none.',
    ),
});

const tlsSchema = z.strictObject({
  rejectUnauthorized: z.boolean().default(true).describe("Verify the upstream's certificate."),
  ca: z.string().nullable().default(null).describe("PEM text of extra CAs to trust (e.g. a private upstream's)."),
});

const retrySchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(10).default(3).describe('Attempts in all, the first included.'),
  maxElapsedMs: z.number().int().min(0).default(20_000).describe("No new attempt starts after this; keep it below the SDK's own timeout."),
  baseDelayMs: z
    .number()
    .int()
    .min(1)
    .default(250)
    .describe('Backoff: full jitter up to min(maxDelayMs, baseDelayMs × 2^n), unless the server said when.'),
  maxDelayMs: z.number().int().min(1).default(10_000).describe('The cap on the computed backoff delay.'),
  budgetRatio: z
    .number()
    .min(0)
    .max(1)
    .default(0.2)
    .describe('Retries may be at most this share of recent requests (floor: 1 retry/s per instance).'),
  maxCooldownSec: z
    .number()
    .int()
    .min(0)
    .default(60)
    .describe("After a 429, the agent's upstream cools down until its announced reset, at most this long."),
});

export const upstreamSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, { error: 'must be lower-case letters, digits, - or _' })
      .describe("The upstream's name in logs, metrics and records (lower-case letters, digits, - or _)."),
    prefix: z
      .string()
      .regex(/^\/(?:[^?#*\s]*[^/?#*\s])?$/, { error: 'must start with / and not end with /' })
      .optional()
      .describe("Path prefix on the main port (default /): stripped, then the target's own path is prepended. Or listen instead."),
    listen: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1').describe("Address of this upstream's listener."),
        port: port.describe("Port of this upstream's listener (0: any free port)."),
      })
      .optional()
      .describe('A listener of its own instead of a prefix, for SDKs whose base path cannot change (stripe-node always sends /v1/…).'),
    target: httpUrl.describe("The upstream's base URL (http or https); its path is prepended to every forwarded path."),
    timeoutMs: z.number().int().positive().default(30_000).describe('Milliseconds one upstream attempt may take.'),
    tls: tlsSchema.prefault({}).describe('TLS towards the upstream.'),
    requestIdHeaders: z
      .array(headerName)
      .default(['request-id', 'x-request-id'])
      .describe("Response headers carrying the upstream's request id (logged as request_id)."),
    requestIdFields: z
      .array(z.string().min(1))
      .default(['request_id', 'error.request_id'])
      .describe("JSON body fields (dotted paths) carrying the upstream's request id, when no header does."),
    codeFields: z
      .array(z.string().min(1))
      .default(['code', 'error.code', 'error.type'])
      .describe("JSON body fields (dotted paths) carrying the upstream's error code (logged as code), first found wins."),
    allow: z
      .array(routePattern)
      .nullable()
      .default(null)
      .describe('An allow-list, e.g. ["POST /v1/payments", "GET /v1/*"]; anything else gets 403 route_not_allowed. null: every route.'),
    idempotency: idempotencySchema.prefault({}).describe("How this upstream's writes are keyed, fingerprinted, stored and replayed."),
    retry: retrySchema
      .prefault({})
      .describe(
        "writeguard's own retries: reads on 408/429/5xx/connection errors; writes only when the answer proves nothing ran " +
          '(notExecutedStatuses, refused connection), or on ambiguous answers too when upstreamHonorsKey — same key, same bytes.',
      ),
    routes: z.array(routeSchema).default([]).describe('Per-route overrides; the first match wins.'),
    intent: intentSchema
      .nullable()
      .default(null)
      .describe(
        'What a write means, whatever its wording (DESIGN §10.1): a reworded or reordered re-send of the same intent is ' +
          'joined or refused 409 possible_duplicate. A route entry with its own intent replaces this one whole. null: none.',
      ),
    policy: z
      .array(policyRuleSchema)
      .default([])
      .describe(
        'Allow-lists on what a write does, checked before anything is claimed or sent (DESIGN §10.3); every matching rule applies.',
      ),
    mcp: mcpSchema
      .nullable()
      .default(null)
      .describe('An MCP server (Streamable HTTP): its protected tool calls (DESIGN §11). null: an HTTP API.'),
    approval: z
      .array(approvalRuleSchema)
      .default([])
      .describe(
        'A person approves writes above a threshold (DESIGN §10.4): { match, amount, scale, above, ttlSec }. ' +
          'The first matching rule whose threshold the amount exceeds applies.',
      ),
    breaker: z
      .strictObject({
        refusals: z.number().int().positive().describe("Refused writes (by the leash, or the upstream's 4xx) that pause an agent…"),
        windowSec: z.number().int().positive().default(60).describe('…within this many seconds.'),
        pauseSec: z
          .number()
          .int()
          .positive()
          .default(900)
          .describe("How long the agent's writes then get 423 agent_paused, on every instance."),
      })
      .nullable()
      .default(null)
      .describe('A breaker that pauses a runaway agent (DESIGN §10.5); reads are never paused. null: none.'),
  })
  .check((ctx) => {
    const u = ctx.value;
    if (u.prefix !== undefined && u.listen !== undefined) {
      ctx.issues.push({ code: 'custom', message: 'use either prefix or listen, not both', input: u, path: ['listen'], continue: true });
    }
    // A passthrough write is never claimed, so no intent index could ever guard it.
    u.routes.forEach((r, i) => {
      if (r.mode === 'passthrough' && r.intent !== null) {
        const message = 'a passthrough route is never claimed, so an intent cannot guard it: remove intent or use mode: protect';
        ctx.issues.push({ code: 'custom', message, input: r.intent, path: ['routes', i, 'intent'], continue: true });
      }
    });
    // A lease shorter than an attempt would let another instance take over a write still in flight.
    const leases = [
      { path: ['idempotency', 'leaseMs'], leaseMs: u.idempotency.leaseMs },
      ...u.routes.map((r, i) => ({ path: ['routes', i, 'idempotency', 'leaseMs'], leaseMs: r.idempotency.leaseMs })),
    ];
    for (const { path, leaseMs } of leases) {
      if (leaseMs !== undefined && leaseMs !== null && leaseMs <= u.timeoutMs) {
        ctx.issues.push({ code: 'custom', message: `must exceed timeoutMs (${u.timeoutMs})`, input: leaseMs, path, continue: true });
      }
    }
  });
