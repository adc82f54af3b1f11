// Which upstream answers a path, and what path it receives. Pure.
import type { ApprovalRule, Config, IdempotencyConfig, IntentConfig, ReconcileConfig, UpstreamConfig } from '../config/schema.js';
import { matchesRoute } from '../config/route-pattern.js';
import type { PolicyRule } from '../leash/policy.js';
import { WriteguardError } from '../errors.js';

export interface Listener {
  host: string;
  port: number;
  /** Upstreams reached through this listener, by prefix ("/" for an upstream with a port of its own). */
  routes: Array<{ prefix: string; upstream: UpstreamConfig }>;
}

/** The main listener (prefixed upstreams) first, then one per upstream with `listen`. */
export function listeners(config: Config): Listener[] {
  const main: Listener = { host: config.listen.host, port: config.listen.port, routes: [] };
  const own: Listener[] = [];
  for (const upstream of config.upstreams) {
    if (upstream.listen === undefined) main.routes.push({ prefix: upstream.prefix ?? '/', upstream });
    else own.push({ host: upstream.listen.host, port: upstream.listen.port, routes: [{ prefix: '/', upstream }] });
  }
  return main.routes.length > 0 ? [main, ...own] : own;
}

/** The part of the raw request target after the prefix, query string kept as sent: "/pay/v1/x?a=1" → "/v1/x?a=1". */
export function stripPrefix(rawUrl: string, prefix: string): string {
  if (prefix === '/') return rawUrl;
  const rest = rawUrl.slice(prefix.length);
  return rest === '' || rest.startsWith('?') ? `/${rest}` : rest;
}

/** The path sent upstream: the target URL's own path, then the stripped request path. */
export function upstreamPath(targetPath: string, apiPath: string): string {
  const base = targetPath.endsWith('/') ? targetPath.slice(0, -1) : targetPath;
  return base + apiPath;
}

/** "/../" or "/./" (also percent-encoded) could climb out of the target's base path. */
export function hasDotSegment(rawUrl: string): boolean {
  const q = rawUrl.indexOf('?');
  const path = (q === -1 ? rawUrl : rawUrl.slice(0, q)).replace(/%2e/gi, '.').replace(/%2f|%5c|\\/gi, '/');
  return /(^|\/)\.{1,2}(\/|$)/.test(path);
}

export function isAllowed(allow: readonly string[] | null, method: string, path: string): boolean {
  return allow === null || allow.some((pattern) => matchesRoute(pattern, method, path));
}

export interface RoutePolicy {
  /** The matched `routes[]` pattern, or null (the upstream's defaults). */
  pattern: string | null;
  mode: 'protect' | 'passthrough';
  idempotency: IdempotencyConfig;
  reconcile: ReconcileConfig | null;
  /** The upstream's allow-list rules, then the route's (scoped to the route unless they name their own patterns). */
  rules: readonly PolicyRule[];
  /** The route's intent fields, else the upstream's (DESIGN §10.1). */
  intent: IntentConfig | null;
  /** The upstream's approval rules, then the route's (DESIGN §10.4). */
  approval: readonly ApprovalRule[];
}

/** The upstream's rules, then a route's own: a route rule without `match` applies to the route's writes. */
function scoped<R extends { match: string[] }>(
  upstream: readonly R[],
  route: ReadonlyArray<Omit<R, 'match'> & { match?: string[] | undefined }>,
  pattern: string,
): readonly R[] {
  return route.length === 0 ? upstream : [...upstream, ...route.map((r) => ({ ...r, match: r.match ?? [pattern] }) as R)];
}

/** Each upstream's policies, built once: the default, then one per `routes[]` entry (config is immutable). */
const policies = new WeakMap<UpstreamConfig, { fallback: RoutePolicy; routes: RoutePolicy[] }>();

function policiesOf(upstream: UpstreamConfig): { fallback: RoutePolicy; routes: RoutePolicy[] } {
  let built = policies.get(upstream);
  if (built !== undefined) return built;
  built = {
    fallback: {
      pattern: null,
      mode: 'protect',
      idempotency: upstream.idempotency,
      reconcile: null,
      rules: upstream.policy,
      intent: upstream.intent,
      approval: upstream.approval,
    },
    routes: upstream.routes.map((route) => ({
      pattern: route.match,
      mode: route.mode,
      intent: route.intent ?? upstream.intent,
      idempotency: { ...upstream.idempotency, ...route.idempotency } as IdempotencyConfig,
      reconcile: route.reconcile,
      rules: scoped(upstream.policy, route.policy, route.match),
      approval: scoped(upstream.approval, route.approval, route.match),
    })),
  };
  policies.set(upstream, built);
  return built;
}

/**
 * The upstream's idempotency settings with the first matching route's overrides on top. Built once
 * per route entry: routing derives it for every write, and locating the write reads it again.
 */
export function routePolicy(upstream: UpstreamConfig, method: string, apiPath: string): RoutePolicy {
  const { fallback, routes } = policiesOf(upstream);
  const index = upstream.routes.findIndex((r) => matchesRoute(r.match, method, apiPath));
  return index === -1 ? fallback : routes[index]!;
}

/** Whether a request is a protected write: a method the policy protects, on a route that is not passthrough. */
export function isProtected(policy: RoutePolicy, method: string): boolean {
  return policy.mode === 'protect' && (policy.idempotency.methods as readonly string[]).includes(method);
}

/** The upstream a listener's request goes to, as fastify routes it: the longest prefix that matches. */
export function upstreamOf(listener: Listener, rawUrl: string): { prefix: string; upstream: UpstreamConfig } | undefined {
  let best: { prefix: string; upstream: UpstreamConfig } | undefined;
  for (const route of listener.routes) {
    const { prefix } = route;
    const matches = prefix === '/' || rawUrl === prefix || rawUrl.startsWith(`${prefix}/`) || rawUrl.startsWith(`${prefix}?`);
    if (matches && (best === undefined || prefix.length > best.prefix.length)) best = route;
  }
  return best;
}

export interface Located {
  /** Path and query as the API documents them (prefix stripped). */
  apiPath: string;
  /** Path and query as the upstream receives them. */
  path: string;
  policy: RoutePolicy;
}

/** Where a request goes and under which rules; refused when it is not a plain path or not allowed. */
export function locate(method: string, rawUrl: string, prefix: string, upstream: UpstreamConfig, targetPath: string): Located {
  if (!rawUrl.startsWith(prefix) || hasDotSegment(rawUrl))
    throw new WriteguardError('bad_request', 'the request path is not a plain path under this route');
  const apiPath = stripPrefix(rawUrl, prefix);
  if (!isAllowed(upstream.allow, method, apiPath)) {
    const q = rawUrl.indexOf('?');
    throw new WriteguardError(
      'route_not_allowed',
      `${method} ${q === -1 ? rawUrl : rawUrl.slice(0, q)} is not in this upstream's allow-list`,
    );
  }
  return { apiPath, path: upstreamPath(targetPath, apiPath), policy: routePolicy(upstream, method, apiPath) };
}
