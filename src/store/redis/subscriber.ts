// A connection subscribed to one channel, and kept subscribed across reconnects.
import { createRedisClient, type Client, type StoreConfig } from './client.js';

/**
 * A second connection (a subscribed one can run nothing else), subscribed again on every
 * (re)connect by our own 'ready' listener. ioredis' autoResubscribe is off: it resubscribes
 * without a catch, so a connection lost at that moment (enableOfflineQueue is false) would be an
 * unhandled rejection, which ends the process.
 */
export function createSubscriber(config: StoreConfig, channel: string, onMessage: (message: string) => void): Client {
  const subscriber = createRedisClient(config, { autoResubscribe: false });
  subscriber.on('error', () => undefined); // the main connection reports outages
  // A resubscribe is harmless; a missed one would be silent.
  subscriber.on('ready', () => void subscriber.subscribe(channel).catch(() => undefined));
  subscriber.on('message', (_channel: string, message: string) => onMessage(message));
  subscriber.connect().catch(() => undefined);
  return subscriber;
}
