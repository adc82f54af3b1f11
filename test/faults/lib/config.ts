// The writeguard config the scenarios run with: Redis store, agents named by a header (each its own
// hash tag), the chaos upstream behind a prefix (`pay`) and behind a port of its own (`stripe`,
// whose SDK always sends /v1/…). Short timeouts, so faults play out in seconds.
import type { ConfigInput } from '../../../src/config/schema.js';

export interface WgConfigOptions {
  redisUrl: string;
  cluster?: Array<{ host: string; port: number }>;
  chaosUrl: string;
  mainPort?: number;
  stripePort?: number | null;
  adminPort?: number;
  timeoutMs?: number;
  leaseMs?: number | null;
  commandTimeoutMs?: number;
  ttlSec?: number;
  tombstoneSec?: number;
  deriveWindowSec?: number;
  upstreamHonorsKey?: boolean;
  maxAttempts?: number;
  maxElapsedMs?: number;
  limits?: ConfigInput['limits'];
  keyPrefix?: string;
  /** Create the sentinel on the fresh Redis (default true here: each scenario starts its own). */
  initOnEmpty?: boolean;
  adminToken?: string;
}

export function wgConfig(o: WgConfigOptions): ConfigInput {
  const idempotency = {
    leaseMs: o.leaseMs ?? null,
    ttlSec: o.ttlSec ?? 3600,
    tombstoneSec: o.tombstoneSec ?? 3600,
    deriveWindowSec: o.deriveWindowSec ?? 600,
    upstreamHonorsKey: o.upstreamHonorsKey ?? false,
  };
  const retry = {
    maxAttempts: o.maxAttempts ?? 3,
    maxElapsedMs: o.maxElapsedMs ?? 6000,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    budgetRatio: 0.5,
    maxCooldownSec: 2,
  };
  const timeoutMs = o.timeoutMs ?? 2000;
  const upstreams: ConfigInput['upstreams'] = [{ name: 'pay', prefix: '/', target: o.chaosUrl, timeoutMs, idempotency, retry }];
  if (o.stripePort !== null) {
    upstreams.push({
      name: 'stripe',
      listen: { host: '127.0.0.1', port: o.stripePort ?? 0 },
      target: o.chaosUrl,
      timeoutMs,
      idempotency,
      retry,
    });
  }
  return {
    listen: { host: '127.0.0.1', port: o.mainPort ?? 0 },
    admin: { host: '127.0.0.1', port: o.adminPort ?? 0, ...(o.adminToken === undefined ? {} : { token: o.adminToken }) },
    store: {
      // Each scenario starts its own fresh Redis; the store-loss scenario keeps the default (off) and runs `store init`.
      kind: 'redis',
      url: o.redisUrl,
      commandTimeoutMs: o.commandTimeoutMs ?? 1000,
      keyPrefix: o.keyPrefix ?? 'wg:',
      initOnEmpty: o.initOnEmpty ?? true,
      ...(o.cluster === undefined ? {} : { cluster: o.cluster }),
    },
    identity: { agentIdHeader: 'x-agent-id' },
    logLevel: 'info',
    ...(o.limits === undefined ? {} : { limits: o.limits }),
    upstreams,
  };
}

/** Targets for the agents: per instance, the main listener and the stripe listener. */
export function targetsOf(instances: Array<{ listen: string[] }>): { main: string[]; stripe: string[] } {
  return { main: instances.map((w) => w.listen[0]!), stripe: instances.map((w) => w.listen[1] ?? w.listen[0]!) };
}
