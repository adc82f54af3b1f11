// Cooldowns, shared by pub/sub: no round trip on the request path. Best effort: a publish that
// fails, or a message that is not ours, is dropped.
import type { CooldownListener } from '../store.js';
import { createRedisClient, type Client, type StoreConfig } from './client.js';

export class CooldownChannel {
  /** A second connection: a subscribed Redis connection can run nothing else. */
  private readonly subscriber: Client;
  private readonly listeners: CooldownListener[] = [];
  private readonly channel: string;

  /** Announcements go out on `publisher` (the store's connection). */
  constructor(
    config: StoreConfig,
    private readonly publisher: Client,
  ) {
    this.channel = `${config.keyPrefix}cooldown`;
    this.subscriber = this.listen(config);
  }

  private listen(config: StoreConfig): Client {
    const subscriber = createRedisClient(config);
    subscriber.on('error', () => undefined); // the main connection reports outages
    // Subscribed again on every (re)connect: a resubscribe is harmless, a missed one would be silent.
    subscriber.on('ready', () => void subscriber.subscribe(this.channel).catch(() => undefined));
    subscriber.on('message', (_channel: string, message: string) => {
      try {
        const { s, u, d } = JSON.parse(message) as { s: unknown; u: unknown; d: unknown };
        if (typeof s === 'string' && typeof u === 'string' && typeof d === 'number')
          for (const listener of this.listeners) listener(s, u, d);
      } catch {
        // not ours
      }
    });
    subscriber.connect().catch(() => undefined);
    return subscriber;
  }

  announce(scope: string, upstream: string, delayMs: number): void {
    this.publisher.publish(this.channel, JSON.stringify({ s: scope, u: upstream, d: delayMs })).catch(() => undefined);
  }

  onCooldown(listener: CooldownListener): void {
    this.listeners.push(listener);
  }

  close(): void {
    this.subscriber.disconnect();
  }
}
