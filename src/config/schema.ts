// The single source of truth for configuration: validation, defaults, types and the JSON Schema.
// Every field's `.describe()` is the help an editor shows (the `description` of `writeguard schema`);
// it says what config/writeguard.example.yaml's comments say. Describe a field last (after
// `.default()`, `.nullable()`…): a description inside a nullable lands in one branch of its anyOf.
import { z } from 'zod';
import { alertsSchema } from './alerts-schema.js';
import { headerName, port } from './fields.js';
import { budgetIssues } from './budget-checks.js';
import { budgetSchema } from './leash-schema.js';
import { upstreamSchema } from './upstream-schema.js';

const listenSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1').describe('Address to listen on; loopback by default: a sidecar is not a public proxy.'),
  port: port.default(8787).describe("Port the agent's SDK points its base URL at (0: any free port)."),
});

const adminSchema = z.strictObject({
  host: z
    .string()
    .min(1)
    .default('127.0.0.1')
    .describe(
      'Address of the admin listener; loopback by default. Off loopback (0.0.0.0 in the image, for probes and scrapes) ' +
        'and without a token, it serves only /healthz, /readyz and /metrics.',
    ),
  port: port.default(8788).describe('Port of the admin listener (0: any free port).'),
  token: z
    .string()
    .min(16)
    .nullable()
    .default(null)
    .describe(
      'Bearer token (16+ chars) for the admin routes. With it, every route but /healthz, /readyz and /metrics needs it; ' +
        'the routes that change state (resolving dead letters) exist only with it.',
    ),
});

/** The memory store's bound; full → new writes refused (503 store_full), no record ever evicted. */
export const MEMORY_STORE_DEFAULTS = { maxRecords: 100_000, maxBytes: 256 * 1024 * 1024 } as const;

const redisUrl = z.string().regex(/^rediss?:\/\//, { error: 'must be a redis:// or rediss:// URL' });
const hostPort = z.strictObject({
  host: z.string().min(1).describe('Host name or address of the node.'),
  port: port.describe('Port of the node.'),
});

export const storeSchema = z.strictObject({
  kind: z.enum(['memory', 'redis']).default('memory').describe('memory: one process, forgets on restart | redis: shared by a fleet.'),
  url: redisUrl
    .default('redis://127.0.0.1:6379')
    .describe(
      'Standalone Redis (redis:// or rediss://); with cluster or sentinel set, it only supplies the credentials and TLS for their nodes.',
    ),
  cluster: z
    .array(hostPort)
    .min(1)
    .nullable()
    .default(null)
    .describe('Redis Cluster seed nodes, e.g. [{ host: 10.0.0.1, port: 7000 }]; null: not a cluster.'),
  sentinel: z
    .strictObject({
      name: z.string().min(1).describe("The master's name, as the sentinels know it."),
      nodes: z.array(hostPort).min(1).describe('The sentinels to ask.'),
    })
    .nullable()
    .default(null)
    .describe('Redis Sentinel, e.g. { name: mymaster, nodes: [{ host: 10.0.0.1, port: 26379 }] }; null: no sentinel.'),
  replayCacheBytes: z
    .number()
    .int()
    .min(0)
    .default(32 * 1024 * 1024)
    .describe(
      'Redis: completed records this instance wrote are kept in its memory up to this many bytes, so a hot replay makes no ' +
        'round trip (they never change until their replay window ends); 0: every replay asks Redis.',
    ),
  keyPrefix: z
    .string()
    .regex(/^[A-Za-z0-9:_-]{0,32}$/, { error: 'must be up to 32 of A-Z, a-z, 0-9, :, _ or -' })
    .default('wg:')
    .describe('Prefix of every key writeguard writes to the store (up to 32 of A-Z, a-z, 0-9, :, _ or -).'),
  commandTimeoutMs: z
    .number()
    .int()
    .positive()
    .default(1000)
    .describe('Milliseconds a store command may take; a slower store fails writes closed (503 store_unavailable).'),
  initOnEmpty: z
    .boolean()
    .default(false)
    .describe(
      'true: create the sentinel on a store holding no writeguard keys (development only: a Redis that restarted empty looks ' +
        'the same as a new one, so its lost claims would be adopted silently); else run `writeguard store init` once.',
    ),
  allowEviction: z
    .boolean()
    .default(false)
    .describe('true: accept a Redis whose maxmemory-policy can evict keys (development only: an evicted record lets its write run again).'),
  waitReplicas: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe("Replicas that must acknowledge each claim and result (Redis WAIT); 0: don't wait."),
  waitTimeoutMs: z
    .number()
    .int()
    .positive()
    .default(100)
    .describe('Milliseconds WAIT waits for waitReplicas; must be below commandTimeoutMs.'),
  memory: z
    .strictObject({
      maxRecords: z
        .number()
        .int()
        .positive()
        .default(MEMORY_STORE_DEFAULTS.maxRecords)
        .describe('Records kept at most: in flight, completed, tombstones and unknown outcomes alike (expired ones are swept).'),
      maxBytes: z
        .number()
        .int()
        .positive()
        .default(MEMORY_STORE_DEFAULTS.maxBytes)
        .describe(
          'Estimated bytes of all records (stored bodies, headers, keys, plus ~1 KiB each); a write that ran may overshoot it ' +
            'by its stored answer. Bodies are kept outside the Node heap, the rest of each record inside it.',
        ),
    })
    .prefault({})
    .describe('store.kind memory only: when either cap is reached, new writes get 503 store_full; no record is ever evicted.'),
});

/** No braces: the agent id sits inside the Redis Cluster hash tag. */
export const AGENT_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

const identitySchema = z.strictObject({
  agentId: z
    .string()
    .regex(AGENT_ID, { error: 'must be 1-128 of A-Z, a-z, 0-9, . _ : @ -' })
    .default('default')
    .describe("The sidecar's agent: the scope of its keys, stable unlike rotating credentials (1-128 of A-Z, a-z, 0-9, . _ : @ -)."),
  agentIdHeader: headerName
    .nullable()
    .default(null)
    .describe(
      'e.g. x-agent-id, when one writeguard serves many agents: the header naming the agent (a write without it gets 400 identity_missing).',
    ),
  credentialHeaders: z
    .array(headerName)
    .default(['authorization', 'x-api-key'])
    .describe(
      'Headers identifying the upstream credential, hashed (never stored): a stored answer is replayed only to a caller ' +
        'presenting the same ones; another gets 422.',
    ),
  credentialsRotate: z
    .boolean()
    .default(false)
    .describe('true: credentials rotate mid-retry (OAuth refresh): the agent scope alone decides replays.'),
});
const limitsSchema = z.strictObject({
  headersTimeoutMs: z
    .number()
    .int()
    .positive()
    .default(10_000)
    .describe('Milliseconds a client has to send its request headers (must not exceed requestTimeoutMs).'),
  requestTimeoutMs: z
    .number()
    .int()
    .positive()
    .default(30_000)
    .describe('Milliseconds a client has to send its whole request (headers and body).'),
  keepAliveTimeoutMs: z.number().int().positive().default(5_000).describe('Milliseconds an idle client connection is kept open.'),
  maxConnections: z.number().int().positive().default(1024).describe('Client connections accepted at once.'),
  maxHeaderCount: z
    .number()
    .int()
    .positive()
    .max(1000)
    .default(200)
    .describe('More header lines get 431 headers_too_large (Node would drop the rest silently).'),
  maxHeaderBytes: z.number().int().positive().default(16_384).describe('A larger header block gets 431 headers_too_large.'),
});

export const configSchema = z
  .strictObject({
    listen: listenSchema.prefault({}).describe("Where the agent's SDK points its base URL."),
    admin: adminSchema.prefault({}).describe('The admin listener: /healthz, /readyz, /metrics, dead letters, key inspection.'),
    store: storeSchema.prefault({}).describe('Where the idempotency records live.'),
    namespace: z
      .string()
      .regex(/^[a-z0-9_-]{1,32}$/, { error: 'must be 1-32 of a-z, 0-9, - or _' })
      .default('live')
      .describe('live / test: keys are never shared across namespaces.'),
    identity: identitySchema
      .prefault({})
      .describe('Whose writes these are: the agent scope of the keys, and the credential a stored answer is replayed to.'),
    limits: limitsSchema.prefault({}).describe('Bounds on what clients may send.'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('The log level (pino).'),
    upstreams: z
      .array(upstreamSchema)
      .min(1, { error: 'at least one upstream is needed' })
      .describe('The APIs writeguard forwards to; at least one.'),
    budgets: z
      .array(budgetSchema)
      .default([])
      .describe(
        "Spend and count caps on the agent's writes, across upstreams, restarts and a fleet sharing the store (DESIGN §10.2); " +
          'a write over any matching budget gets 403 limit_exceeded and is not sent.',
      ),
    alerts: alertsSchema.prefault({}).describe('Signed webhook events for an operator: limits hit, pauses, unknown outcomes.'),
    drainMs: z
      .number()
      .int()
      .positive()
      .nullable()
      .default(null)
      .describe(
        'How long in-flight requests get after SIGTERM before the process exits; null: the longest upstream timeoutMs + 5 s ' +
          "(35 s by default). Keep the orchestrator's stop timeout above it (compose stop_grace_period, " +
          'Kubernetes terminationGracePeriodSeconds): a write cut at the deadline is left outcome_unknown.',
      ),
  })
  .check((ctx) => {
    const cfg = ctx.value;
    if (cfg.store.waitReplicas > 0 && cfg.store.waitTimeoutMs >= cfg.store.commandTimeoutMs) {
      ctx.issues.push({
        code: 'custom',
        message: 'must be below store.commandTimeoutMs (WAIT runs inside one command)',
        input: cfg,
        path: ['store', 'waitTimeoutMs'],
        continue: true,
      });
    }
    if (cfg.limits.headersTimeoutMs > cfg.limits.requestTimeoutMs) {
      ctx.issues.push({
        code: 'custom',
        message: 'must not exceed limits.requestTimeoutMs',
        input: cfg,
        path: ['limits', 'headersTimeoutMs'],
        continue: true,
      });
    }
    const names = new Set<string>();
    const prefixes = new Set<string>();
    const ports = new Set<number>([cfg.listen.port, cfg.admin.port].filter((p) => p !== 0));
    cfg.upstreams.forEach((u, i) => {
      if (names.has(u.name))
        ctx.issues.push({ code: 'custom', message: `duplicate upstream name "${u.name}"`, input: u, path: ['upstreams', i, 'name'] });
      names.add(u.name);
      if (u.listen !== undefined) {
        if (u.listen.port !== 0 && ports.has(u.listen.port)) {
          ctx.issues.push({
            code: 'custom',
            message: `port ${u.listen.port} is already used`,
            input: u,
            path: ['upstreams', i, 'listen', 'port'],
          });
        }
        ports.add(u.listen.port);
      } else {
        const prefix = u.prefix ?? '/';
        if (prefixes.has(prefix))
          ctx.issues.push({ code: 'custom', message: `duplicate prefix "${prefix}"`, input: u, path: ['upstreams', i, 'prefix'] });
        prefixes.add(prefix);
      }
    });
    // Checks run even after a field failed, on its unparsed value: budgets are read only once they and the upstreams parsed.
    if (!ctx.issues.some((issue) => issue.path?.[0] === 'budgets' || issue.path?.[0] === 'upstreams')) {
      for (const { path, message } of budgetIssues(cfg.budgets, cfg.upstreams)) {
        ctx.issues.push({ code: 'custom', message, input: cfg.budgets, path, continue: true });
      }
    }
  });

const DRAIN_MARGIN_MS = 5_000;

/** The longest one upstream attempt may take. */
export function longestTimeoutMs(config: Pick<Config, 'upstreams'>): number {
  return Math.max(...config.upstreams.map((u) => u.timeoutMs));
}

/** The drain deadline after SIGTERM: the configured one, else the longest upstream attempt plus a margin. */
export function drainDeadlineMs(config: Pick<Config, 'drainMs' | 'upstreams'>): number {
  return config.drainMs ?? longestTimeoutMs(config) + DRAIN_MARGIN_MS;
}

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type UpstreamConfig = Config['upstreams'][number];
export type IdempotencyConfig = UpstreamConfig['idempotency'];
export type RouteConfig = UpstreamConfig['routes'][number];
export type RetryConfig = UpstreamConfig['retry'];
export type ReconcileConfig = NonNullable<RouteConfig['reconcile']>;
export type IntentConfig = NonNullable<UpstreamConfig['intent']>;
export type ApprovalRule = UpstreamConfig['approval'][number];
