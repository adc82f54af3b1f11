// The operator commands (`writeguard store init|ack`), each on a connection of its own, and the
// sentinel write they share with an instance that initialises an empty store (readiness.ts).
import { randomUUID } from 'node:crypto';
import { Cluster } from 'ioredis';
import { StoreUnavailableError } from '../store.js';
import {
  createRedisClient,
  DEADLINE_MARGIN_MS,
  slotPerMaster,
  unavailable,
  waitForClient,
  withDeadline,
  type Client,
  type StoreConfig,
} from './client.js';
import { sentinelAckKey, sentinelKey } from './sentinel.js';
import { allSlotSentinelKeys, slotSentinelKeyOf } from './slot-sentinels.js';

const CONNECT_WAIT_MS = 5000;

/** Slot sentinels are written this many at a time (16,384 in all on a Cluster). */
const SENTINEL_WRITE_BATCH = 512;

/**
 * Writes the sentinel: the store's one key, or on a Cluster every slot's. `NX` leaves an existing
 * sentinel as it is (`existed`); a partial Cluster set (a master emptied) is completed with the
 * value the others hold only by an explicit ack, never here. On a Cluster, `NX` writes the value
 * its first slot holds (set there first if none): racing initialisers all write the same one.
 */
export async function writeSentinel(client: Client, keyPrefix: string, value: string, mode: 'NX' | 'force'): Promise<{ existed: boolean }> {
  const keys = client instanceof Cluster ? allSlotSentinelKeys(keyPrefix) : [sentinelKey(keyPrefix)];
  let existed = false;
  if (mode === 'NX' && keys.length > 1) {
    // Instances initialising an empty Cluster at once agree first, on one key, on one value: each
    // writing its own into 16,384 slots would leave a mix that no begin could pass.
    existed = (await client.set(keys[0]!, value, 'NX')) !== 'OK';
    value = (await client.get(keys[0]!)) ?? value;
  }
  for (let i = 0; i < keys.length; i += SENTINEL_WRITE_BATCH) {
    const replies = await Promise.all(
      keys.slice(i, i + SENTINEL_WRITE_BATCH).map((key) => (mode === 'NX' ? client.set(key, value, 'NX') : client.set(key, value))),
    );
    if (replies.some((r) => r !== 'OK')) existed = true;
  }
  return { existed };
}

async function withClient<T>(config: StoreConfig, op: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = createRedisClient(config);
  client.on('error', () => undefined);
  client.connect().catch(() => undefined);
  try {
    await waitForClient(client, Math.max(CONNECT_WAIT_MS, config.commandTimeoutMs));
    // A Cluster's sentinels are one per slot: 16,384 writes get a budget of their own.
    return await withDeadline(work(client), 3 * (config.commandTimeoutMs + DEADLINE_MARGIN_MS) + (config.cluster === null ? 0 : 30_000));
  } catch (err) {
    throw unavailable(op, err);
  } finally {
    client.disconnect();
  }
}

/**
 * Creates the sentinel unless there is one. On a Cluster where some slots kept theirs and others
 * lost them (a master emptied), init refuses: that is a loss to acknowledge, not a new store.
 */
export function initStore(config: StoreConfig): Promise<{ existed: boolean }> {
  return withClient(config, 'init', async (client) => {
    if (client instanceof Cluster) {
      const present = new Set(
        await Promise.all(slotPerMaster(client).map((slot) => client.get(slotSentinelKeyOf(config.keyPrefix, slot)))),
      );
      if (present.size > 1)
        throw new StoreUnavailableError(
          'redis store init refused: some masters hold a sentinel and others none (a master lost its data); check, then run `writeguard store ack`',
        );
      const [value] = [...present];
      if (value !== null && value !== undefined) return { existed: true };
    }
    return writeSentinel(client, config.keyPrefix, randomUUID(), 'NX');
  });
}

/** Accepts the store as it is now: a new sentinel that every running instance adopts. */
export function ackStore(config: StoreConfig): Promise<{ value: string }> {
  return withClient(config, 'ack', async (client) => {
    const value = randomUUID();
    // The ack first: an instance that sees the new sentinel finds it acknowledged.
    await client.set(sentinelAckKey(config.keyPrefix), value);
    await writeSentinel(client, config.keyPrefix, value, 'force');
    return { value };
  });
}
