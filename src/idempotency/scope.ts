// Whose operation a key belongs to (namespace and agent, never the rotating credential), and the
// key the upstream receives. Pure.
import { createHmac, hash } from 'node:crypto';
import { AGENT_ID, type Config } from '../config/schema.js';
import { WriteguardError } from '../errors.js';
import { valuesOf } from '../http/headers.js';

/** The agent: from its header when one writeguard serves many agents, else the configured one. */
export function agentOf(identity: Config['identity'], headerValues: readonly string[] | undefined): string {
  if (identity.agentIdHeader === null) return identity.agentId;
  if (headerValues === undefined || headerValues.length === 0) {
    throw new WriteguardError('identity_missing', `a write needs the ${identity.agentIdHeader} header naming the agent`);
  }
  const agent = headerValues[0]!;
  if (headerValues.length > 1 || !AGENT_ID.test(agent)) {
    throw new WriteguardError(
      'identity_missing',
      `the ${identity.agentIdHeader} header must be one value of 1-128 of A-Z, a-z, 0-9, . _ : @ -`,
    );
  }
  return agent;
}

/** Reads need no identity: an absent or invalid agent header reads as the configured agent. */
export function agentForRead(identity: Config['identity'], headerValues: readonly string[] | undefined): string {
  const agent = headerValues?.length === 1 ? headerValues[0]! : undefined;
  return agent !== undefined && AGENT_ID.test(agent) ? agent : identity.agentId;
}

export function scopeOf(namespace: string, agent: string): string {
  return `${namespace}:${agent}`;
}

/**
 * The key sent upstream for a key writeguard made up (derived or random): keyed by a secret and the
 * creation time, so an identical payment made tomorrow is a new key upstream too.
 */
export function generatedUpstreamKey(secret: Buffer, scope: string, key: string, createdAt: number): string {
  return `wg_${createHmac('sha256', secret).update(`${scope}\n${key}\n${createdAt}`).digest('base64url')}`;
}

/**
 * Who the caller is upstream: a hash of the credential headers it presents (never the secret
 * itself), or undefined when it presents none. A stored answer is replayed only to the same one.
 */
export function credentialOf(rawHeaders: readonly string[], names: readonly string[]): string | undefined {
  let presented: string | undefined;
  for (const name of names) {
    const values = valuesOf(rawHeaders, name);
    if (values !== undefined) presented = `${presented ?? ''}${name}:${values.join('\n')}\n`;
  }
  return presented === undefined ? undefined : hash('sha256', presented, 'base64url');
}
