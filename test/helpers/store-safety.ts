// Helpers for the store-safety tests (eviction, persistence, emptied stores, FLUSHALL, cluster loss):
// admin readiness and metrics, and raw Redis access. (Waits: ./wait.ts; a test cluster: ./redis.ts.)
import { Redis } from 'ioredis';

export interface Readiness {
  status: number;
  body: { ready?: boolean; reason?: string; detail?: string } & Record<string, unknown>;
}

export async function readyz(adminUrl: string): Promise<Readiness> {
  const res = await fetch(`${adminUrl}/readyz`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let body: Readiness['body'];
  try {
    body = JSON.parse(text) as Readiness['body'];
  } catch {
    body = { unparsed: text };
  }
  return { status: res.status, body };
}

/** The value of an unlabelled (or first labelled) sample of `name` on /metrics; null when absent. */
export async function metric(adminUrl: string, name: string): Promise<number | null> {
  const text = await (await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^${escaped}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return match === null ? null : Number(match[1]);
}

/** A plain connection for the test to act on Redis directly (FLUSHALL, CONFIG SET, fills). */
export function rawRedis(url: string, raws: Redis[]): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 100, commandTimeout: 5000 });
  client.on('error', () => undefined);
  raws.push(client);
  return client;
}
