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

const redisUrl = z.string().regex(/^rediss?:\/\//, { error: 'must be a redis:// or rediss:// URL' });
const hostPort = z.strictObject({ host: z.string().min(1), port });

const storeSchema = z.strictObject({
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
  /** Create the sentinel on a store holding no writeguard keys (development); else `writeguard store init`. */
  initOnEmpty: z.boolean().default(true),
  /** Replicas that must acknowledge begin and finish (Redis WAIT); 0 = don't wait. */
  waitReplicas: z.number().int().min(0).default(0),
  waitTimeoutMs: z.number().int().positive().default(100),
});

const identitySchema = z.strictObject({
  /** The sidecar's agent: a stable scope for keys, unlike rotating credentials. */
  agentId: z.string().min(1).max(128).default('default'),
  /** For one writeguard shared by many agents: the header naming the agent. */
  agentIdHeader: headerName.nullable().default(null),
});

const idempotencySchema = z.strictObject({
  methods: z.array(method).default(['POST', 'PUT', 'PATCH', 'DELETE']),
  maxBodyBytes: z.number().int().positive().default(1_048_576),
});

const tlsSchema = z.strictObject({
  rejectUnauthorized: z.boolean().default(true),
  /** PEM text of extra CAs to trust (e.g. a private upstream's). */
  ca: z.string().nullable().default(null),
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
  })
  .check((ctx) => {
    if (ctx.value.prefix !== undefined && ctx.value.listen !== undefined) {
      ctx.issues.push({ code: 'custom', message: 'use either prefix or listen, not both', input: ctx.value, path: ['listen'] });
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
    if (cfg.limits.headersTimeoutMs > cfg.limits.requestTimeoutMs) {
      ctx.issues.push({ code: 'custom', message: 'must not exceed limits.requestTimeoutMs', input: cfg, path: ['limits', 'headersTimeoutMs'] });
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
