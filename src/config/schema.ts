// The single source of truth for configuration: validation, defaults, types and the JSON Schema.
import { z } from 'zod';

const port = z.number().int().min(0).max(65535);
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });
const method = z.enum(['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE']);
/** "POST /v1/payments" or "GET /v1/*": a method (or *) and a path whose trailing * matches any rest. */
const routePattern = z
  .string()
  .regex(/^(\*|[A-Z]+) \/\S*$/, { error: 'must look like "POST /v1/payments" or "GET /v1/*"' });
const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'must be an HTTP header name' })
  .transform((s) => s.toLowerCase());

const listenSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: port.default(8787),
});

const adminSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: port.default(8788),
  /** Bearer token for the admin routes that change state; without it they are not served. */
  token: z.string().min(16).nullable().default(null),
});

/** The memory store's bound; full → new writes refused (503 store_full), no record ever evicted. */
export const MEMORY_STORE_DEFAULTS = { maxRecords: 100_000, maxBytes: 256 * 1024 * 1024 } as const;

const redisUrl = z.string().regex(/^rediss?:\/\//, { error: 'must be a redis:// or rediss:// URL' });
const hostPort = z.strictObject({ host: z.string().min(1), port });

export const storeSchema = z.strictObject({
  kind: z.enum(['memory', 'redis']).default('memory'),
  /** Standalone Redis (also the credentials and TLS for cluster/sentinel nodes). */
  url: redisUrl.default('redis://127.0.0.1:6379'),
  /** Redis Cluster seed nodes; when set, `url` only supplies credentials. */
  cluster: z.array(hostPort).min(1).nullable().default(null),
  /** Redis Sentinel: the master's name and the sentinels to ask. */
  sentinel: z.strictObject({ name: z.string().min(1), nodes: z.array(hostPort).min(1) }).nullable().default(null),
  keyPrefix: z.string().regex(/^[A-Za-z0-9:_-]{0,32}$/, { error: 'must be up to 32 of A-Z, a-z, 0-9, :, _ or -' }).default('wg:'),
  /** Milliseconds a store command may take before the write fails closed. */
  commandTimeoutMs: z.number().int().positive().default(1000),
  /**
   * Create the sentinel on a store holding no writeguard keys (development only: a Redis that
   * restarted empty looks the same as a new one, so its lost claims would be adopted silently).
   * Off by default: run `writeguard store init` once.
   */
  initOnEmpty: z.boolean().default(false),
  /** Accept a Redis whose maxmemory-policy can evict keys (development only: an evicted record lets its write run again). */
  allowEviction: z.boolean().default(false),
  /** Replicas that must acknowledge begin and finish (Redis WAIT); 0 = don't wait. */
  waitReplicas: z.number().int().min(0).default(0),
  waitTimeoutMs: z.number().int().positive().default(100),
  /** store.kind memory only: when either cap is reached, new writes get 503 store_full; no record is evicted. */
  memory: z
    .strictObject({
      /** Records kept at most: in flight, completed, tombstones and unknown outcomes alike (expired ones are swept). */
      maxRecords: z.number().int().positive().default(MEMORY_STORE_DEFAULTS.maxRecords),
      /** Estimated heap bytes of all records (stored bodies, headers, keys, plus ~1 KiB each); a write that ran may overshoot it by its stored answer. */
      maxBytes: z.number().int().positive().default(MEMORY_STORE_DEFAULTS.maxBytes),
    })
    .prefault({}),
});

/** No braces: the agent id sits inside the Redis Cluster hash tag. */
export const AGENT_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

const identitySchema = z.strictObject({
  /** The sidecar's agent: a stable scope for keys, unlike rotating credentials. */
  agentId: z.string().regex(AGENT_ID, { error: 'must be 1-128 of A-Z, a-z, 0-9, . _ : @ -' }).default('default'),
  /** For one writeguard shared by many agents: the header naming the agent. */
  agentIdHeader: headerName.nullable().default(null),
  /**
   * The headers whose values identify the upstream credential (hashed, never stored): a stored
   * answer is replayed only to a caller presenting the same ones; another gets 422.
   */
  credentialHeaders: z.array(headerName).default(['authorization', 'x-api-key']),
  /** Credentials rotate mid-retry (OAuth tokens refreshed): the agent scope alone decides replays. */
  credentialsRotate: z.boolean().default(false),
});

/** `header`, or `body:referenceId` / `body:meta.idempotency_key` for a key carried in a JSON body field. */
const keySource = z.string().regex(/^(header|body:[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*)$/, { error: 'must be "header" or "body:<field>"' });

// The fields without defaults serve per-route overrides; the upstream-level section adds the defaults.
const idempotencyFields = {
  methods: z.array(method),
  header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'must be an HTTP header name' }),
  keyFrom: z.array(keySource).min(1),
  /** derive: a key from the request itself; uuid: a random key; reject: 400; allow: forward unprotected. */
  missing: z.enum(['derive', 'uuid', 'reject', 'allow']),
  deriveWindowSec: z.number().int().positive(),
  fingerprint: z.enum(['bytes', 'canonical-json']),
  fingerprintHeaders: z.array(headerName),
  forwardKey: z.boolean(),
  /** true only if the upstream itself dedupes on the key: unknown outcomes may then be re-sent with it. */
  upstreamHonorsKey: z.boolean(),
  /** Answers that prove the write did not run: the key is released. */
  notExecutedStatuses: z.array(z.number().int().min(400).max(599)),
  ttlSec: z.number().positive(),
  tombstoneSec: z.number().min(0),
  onConcurrent: z.enum(['reject', 'wait']),
  /** With onConcurrent: wait, the longest a duplicate is held before 409. */
  waitMs: z.number().int().positive(),
  maxBodyBytes: z.number().int().positive(),
  maxStoredResponseBytes: z.number().int().min(0),
  /** Response headers kept for replay, besides the request id headers. */
  replayHeaders: z.array(headerName),
  /** How long a claim holds without renewal; null = timeoutMs + 5 s. Must exceed timeoutMs. */
  leaseMs: z.number().int().positive().nullable(),
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
  Object.fromEntries(Object.entries(idempotencyFields).map(([k, field]) => [k, (field as z.ZodType).default(IDEMPOTENCY_DEFAULTS[k as keyof Fields] as never)])) as {
    [K in keyof Fields]: z.ZodDefault<Fields[K]>;
  },
);

/** A status-check request that settles an unknown outcome: found → completed with its answer, not found → released. */
const reconcileSchema = z.strictObject({
  method: z.enum(['GET', 'HEAD']).default('GET'),
  /** The API path to ask, with `{key}` standing for the key the upstream received: "/v1/ops?key={key}". */
  path: z.string().regex(/^\/\S*\{key\}\S*$/, { error: 'must start with / and contain {key}' }),
  foundStatuses: z.array(z.number().int().min(200).max(299)).min(1).default([200]),
  notFoundStatuses: z.array(z.number().int().min(400).max(499)).min(1).default([404]),
});

const routeSchema = z.strictObject({
  /** "POST /v1/payments" or "POST /v1/transfers/*", against the path as the API documents it. */
  match: routePattern,
  /** passthrough: a POST that reads (a quote, a completion): streamed, no key, no record. */
  mode: z.enum(['protect', 'passthrough']).default('protect'),
  idempotency: z.strictObject(idempotencyFields).partial().default({}),
  reconcile: reconcileSchema.nullable().default(null),
});

const tlsSchema = z.strictObject({
  rejectUnauthorized: z.boolean().default(true),
  /** PEM text of extra CAs to trust (e.g. a private upstream's). */
  ca: z.string().nullable().default(null),
});

const retrySchema = z.strictObject({
  /** Attempts in all, the first included. */
  maxAttempts: z.number().int().min(1).max(10).default(3),
  /** No new attempt starts after this; keep it below the SDK's own timeout. */
  maxElapsedMs: z.number().int().min(0).default(20_000),
  baseDelayMs: z.number().int().min(1).default(250),
  maxDelayMs: z.number().int().min(1).default(10_000),
  /** Retries may be at most this share of recent requests (floor: 1 retry/s per instance). */
  budgetRatio: z.number().min(0).max(1).default(0.2),
  /** Longest a 429 cools an agent's upstream down, whatever reset it announced. */
  maxCooldownSec: z.number().int().min(0).default(60),
});

const upstreamSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, { error: 'must be lower-case letters, digits, - or _' }),
    /** Path prefix on the main port; stripped, then the target URL's own path is prepended. */
    prefix: z.string().regex(/^\/(?:[^?#*\s]*[^/?#*\s])?$/, { error: 'must start with / and not end with /' }).optional(),
    /** A listener of its own, for SDKs whose base path cannot change. */
    listen: z.strictObject({ host: z.string().min(1).default('127.0.0.1'), port }).optional(),
    target: httpUrl,
    timeoutMs: z.number().int().positive().default(30_000),
    tls: tlsSchema.prefault({}),
    requestIdHeaders: z.array(headerName).default(['request-id', 'x-request-id']),
    requestIdFields: z.array(z.string().min(1)).default(['request_id', 'error.request_id']),
    codeFields: z.array(z.string().min(1)).default(['code', 'error.code', 'error.type']),
    /** Optional allow-list; anything else gets 403 route_not_allowed. */
    allow: z.array(routePattern).nullable().default(null),
    idempotency: idempotencySchema.prefault({}),
    retry: retrySchema.prefault({}),
    /** Per-route overrides; the first match wins. */
    routes: z.array(routeSchema).default([]),
  })
  .check((ctx) => {
    const u = ctx.value;
    if (u.prefix !== undefined && u.listen !== undefined) {
      ctx.issues.push({ code: 'custom', message: 'use either prefix or listen, not both', input: u, path: ['listen'], continue: true });
    }
    // A lease shorter than an attempt would let another instance take over a write still in flight.
    const leases = [{ path: ['idempotency', 'leaseMs'], leaseMs: u.idempotency.leaseMs }, ...u.routes.map((r, i) => ({ path: ['routes', i, 'idempotency', 'leaseMs'], leaseMs: r.idempotency.leaseMs }))];
    for (const { path, leaseMs } of leases) {
      if (leaseMs !== undefined && leaseMs !== null && leaseMs <= u.timeoutMs) {
        ctx.issues.push({ code: 'custom', message: `must exceed timeoutMs (${u.timeoutMs})`, input: leaseMs, path, continue: true });
      }
    }
  });

const limitsSchema = z.strictObject({
  /** Time a client has to send its request headers. */
  headersTimeoutMs: z.number().int().positive().default(10_000),
  /** Time a client has to send its whole request (headers and body). */
  requestTimeoutMs: z.number().int().positive().default(30_000),
  keepAliveTimeoutMs: z.number().int().positive().default(5_000),
  maxConnections: z.number().int().positive().default(1024),
  /** Node drops header lines past its limit silently; writeguard refuses the request instead. */
  maxHeaderCount: z.number().int().positive().max(1000).default(200),
  maxHeaderBytes: z.number().int().positive().default(16_384),
});

export const configSchema = z
  .strictObject({
    listen: listenSchema.prefault({}),
    admin: adminSchema.prefault({}),
    store: storeSchema.prefault({}),
    /** live / test: keys are never shared across namespaces. */
    namespace: z.string().regex(/^[a-z0-9_-]{1,32}$/, { error: 'must be 1-32 of a-z, 0-9, - or _' }).default('live'),
    identity: identitySchema.prefault({}),
    limits: limitsSchema.prefault({}),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    upstreams: z.array(upstreamSchema).min(1, { error: 'at least one upstream is needed' }),
  })
  .check((ctx) => {
    const cfg = ctx.value;
    if (cfg.store.waitReplicas > 0 && cfg.store.waitTimeoutMs >= cfg.store.commandTimeoutMs) {
      ctx.issues.push({ code: 'custom', message: 'must be below store.commandTimeoutMs (WAIT runs inside one command)', input: cfg, path: ['store', 'waitTimeoutMs'], continue: true });
    }
    if (cfg.limits.headersTimeoutMs > cfg.limits.requestTimeoutMs) {
      ctx.issues.push({ code: 'custom', message: 'must not exceed limits.requestTimeoutMs', input: cfg, path: ['limits', 'headersTimeoutMs'], continue: true });
    }
    const names = new Set<string>();
    const prefixes = new Set<string>();
    const ports = new Set<number>([cfg.listen.port, cfg.admin.port].filter((p) => p !== 0));
    cfg.upstreams.forEach((u, i) => {
      if (names.has(u.name)) ctx.issues.push({ code: 'custom', message: `duplicate upstream name "${u.name}"`, input: u, path: ['upstreams', i, 'name'] });
      names.add(u.name);
      if (u.listen !== undefined) {
        if (u.listen.port !== 0 && ports.has(u.listen.port)) {
          ctx.issues.push({ code: 'custom', message: `port ${u.listen.port} is already used`, input: u, path: ['upstreams', i, 'listen', 'port'] });
        }
        ports.add(u.listen.port);
      } else {
        const prefix = u.prefix ?? '/';
        if (prefixes.has(prefix)) ctx.issues.push({ code: 'custom', message: `duplicate prefix "${prefix}"`, input: u, path: ['upstreams', i, 'prefix'] });
        prefixes.add(prefix);
      }
    });
  });

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type UpstreamConfig = Config['upstreams'][number];
export type IdempotencyConfig = UpstreamConfig['idempotency'];
export type RouteConfig = UpstreamConfig['routes'][number];
export type RetryConfig = UpstreamConfig['retry'];
export type ReconcileConfig = NonNullable<RouteConfig['reconcile']>;
