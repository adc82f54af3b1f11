// Assembles writeguard from a config: proxy apps (one per listener), the admin app, upstream pools.
import { setMaxListeners } from 'node:events';
import type { FastifyInstance } from 'fastify';
import { Pool, type Dispatcher } from 'undici';
import { buildAdminApp } from './admin/plugin.js';
import { longestTimeoutMs, type Config, type UpstreamConfig } from './config/schema.js';
import type { Logger } from './observe/logger.js';
import { createGuard } from './idempotency/guard.js';
import { createAlerts } from './observe/alerts.js';
import { expireDueApprovals } from './admin/approvals.js';
import { Metrics } from './observe/metrics.js';
import type { Tracing } from './observe/trace-types.js';
import { startTracing } from './observe/tracing.js';
import { RetryBudget } from './retry/budget.js';
import { Cooldowns, type RetryKit } from './retry/cooldown.js';
import { buildProxyApp } from './proxy/plugin.js';
import { listeners } from './proxy/route.js';
import { createStore, MemoryStore } from './store/index.js';
import type { Store } from './store/store.js';

export interface BoundApp {
  app: FastifyInstance;
  host: string;
  port: number;
}

export interface Writeguard {
  proxies: BoundApp[];
  admin: BoundApp;
  store: Store;
  /** Starts every listener; returns the bound URLs (port 0 in the config picks a free one). */
  listen(): Promise<{ proxies: string[]; admin: string }>;
  /** Stops taking requests: readiness turns 503, new requests get 503 draining. */
  drain(): void;
  /** Waits for in-flight requests, then closes listeners and upstream pools. */
  close(): Promise<void>;
}

function upstreamPool(upstream: UpstreamConfig): Dispatcher {
  const { origin } = new URL(upstream.target);
  return new Pool(origin, {
    connections: 128,
    keepAliveTimeout: 4_000,
    // Certificates are verified; a private CA is trusted only when configured.
    connect: { rejectUnauthorized: upstream.tls.rejectUnauthorized, ...(upstream.tls.ca === null ? {} : { ca: upstream.tls.ca }) },
  });
}

/** The dead-letter gauge counts up to this many (a scrape must stay cheap). */
const METRICS_DEAD_LETTER_LIMIT = 10_000;
const ALERTS_FLUSH_MS = 2_000;
const APPROVAL_SWEEP_MS = 60_000;
const APPROVAL_SWEEP_LIMIT = 1_000;

/** With approval rules, pending approvals past their time are expired (holds released) about once a minute. */
function sweepApprovals(config: Config, store: Store, log: Logger): NodeJS.Timeout | undefined {
  const used = config.upstreams.some((u) => u.approval.length > 0 || u.routes.some((r) => r.approval.length > 0));
  if (!used) return undefined;
  return setInterval(() => {
    expireDueApprovals(store, Date.now(), APPROVAL_SWEEP_LIMIT).then(
      (n) => n > 0 && log.info({ expired: n }, 'pending approvals past their time expired; their holds released'),
      (err: Error) => log.warn({ err: { message: err.message } }, 'approval sweep failed'),
    );
  }, APPROVAL_SWEEP_MS).unref();
}

export interface ServerOptions {
  /** A store to use instead of the one the config names (tests share one between instances). */
  store?: Store;
  /** OpenTelemetry tracing (observe/tracing.ts startTracing), shut down by close(); none by default. */
  tracing?: Tracing | null;
}

export function buildServer(config: Config, log: Logger, options: ServerOptions = {}): Writeguard {
  const lifecycle = { draining: false };
  const store = options.store ?? createStore(config.store, log);
  const dispatchers = new Map(config.upstreams.map((u) => [u.name, upstreamPool(u)] as const));
  const shutdown = new AbortController();
  // Every request waiting out a backoff or a cooldown listens for shutdown: many at once is the normal
  // case, not the leak Node's warning at 11 listeners suspects (each removes its listener when done).
  setMaxListeners(0, shutdown.signal);
  const cooldowns = new Cooldowns();
  store.onCooldown((scope, upstream, delayMs) => cooldowns.note(scope, upstream, delayMs));
  const kit: RetryKit = {
    budgets: new Map(config.upstreams.map((u) => [u.name, new RetryBudget(u.retry.budgetRatio)] as const)),
    cooldowns,
    announce: (scope, upstream, delayMs) => store.announceCooldown(scope, upstream, delayMs),
    signal: shutdown.signal,
  };
  const metrics = new Metrics(
    async () => (await store.deadLetters(METRICS_DEAD_LETTER_LIMIT)).length,
    () => ({ notReady: store.notReadyReason()?.code ?? null, persistence: store.persistence() }),
  );
  if (store instanceof MemoryStore) metrics.memoryStore(() => store.usage());
  const alerts = createAlerts(config.alerts, { log, metrics });
  const handleWrite = createGuard({ config, store, log, kit, metrics, alerts });
  const deps = { config, log, dispatchers, lifecycle, kit, metrics, handleWrite, tracing: options.tracing ?? null };
  const proxies = listeners(config).map((l) => ({ app: buildProxyApp(l, deps), host: l.host, port: l.port }));
  const admin = { app: buildAdminApp({ config, log, lifecycle, store, metrics }), host: config.admin.host, port: config.admin.port };
  const approvalSweep = sweepApprovals(config, store, log);

  return {
    proxies,
    admin,
    store,
    async listen() {
      const urls = await Promise.all(proxies.map((p) => p.app.listen({ host: p.host, port: p.port })));
      return { proxies: urls, admin: await admin.app.listen({ host: admin.host, port: admin.port }) };
    },
    drain() {
      lifecycle.draining = true;
    },
    async close() {
      lifecycle.draining = true;
      shutdown.abort(); // waits and backoffs answer now instead of sleeping through the drain
      clearInterval(approvalSweep);
      await Promise.all(proxies.map((p) => p.app.close()));
      await admin.app.close();
      await Promise.all([...dispatchers.values()].map((d) => d.close()));
      // What is still queued gets a moment to leave; the rest is counted as dropped.
      await alerts.close(ALERTS_FLUSH_MS);
      await options.tracing?.shutdown();
      if (options.store === undefined) await store.close();
    },
  };
}

export interface RunningWriteguard {
  /** Base URL of each proxy listener (the agent's SDK points here), main listener first. */
  proxies: string[];
  /** Base URL of the admin listener (/healthz, /readyz, /metrics, …). */
  admin: string;
  /** Stops taking requests, waits for the ones in flight, then closes listeners, pools and the store. */
  close(): Promise<void>;
}

/** How long a start waits for the store before listening anyway (writes fail closed until it is ready). */
const STORE_WAIT_MS = 5_000;

/** Builds writeguard from a parsed config, waits briefly for its store, and listens: the CLI's start and the API's. */
export async function launch(config: Config, log: Logger): Promise<RunningWriteguard> {
  const server = buildServer(config, log, { tracing: await startTracing(log) });
  // Reads flow either way; writes fail closed until the store is ready, so give it a moment first.
  if (!(await server.store.whenReady(STORE_WAIT_MS))) {
    const why = server.store.notReadyReason();
    log.warn({ reason: why?.code, detail: why?.detail }, 'store not ready yet: writes are refused (503 store_unavailable) until it is');
  }
  const longest = longestTimeoutMs(config);
  if (config.drainMs !== null && config.drainMs <= longest) {
    log.warn(
      { drainMs: config.drainMs, timeoutMs: longest },
      'drainMs is not above the longest upstream timeoutMs: a write cut at the drain deadline is left outcome_unknown',
    );
  }
  const urls = await server.listen();
  log.info(
    { listen: urls.proxies, admin: urls.admin, upstreams: config.upstreams.map((u) => ({ name: u.name, target: u.target })) },
    'writeguard listening',
  );
  return { ...urls, close: () => server.close() };
}
