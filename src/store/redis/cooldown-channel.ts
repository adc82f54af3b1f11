// Cooldowns, shared by pub/sub: no round trip on the request path. Best effort: a publish that
// fails, or a message that is not ours, is dropped.
import type { CooldownListener } from '../store.js';
import type { Client, StoreConfig } from './client.js';
import { createSubscriber } from './subscriber.js';

export class CooldownChannel {
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
    return createSubscriber(config, this.channel, (message) => {
      try {
        const { s, u, d } = JSON.parse(message) as { s: unknown; u: unknown; d: unknown };
        if (typeof s === 'string' && typeof u === 'string' && typeof d === 'number')
          for (const listener of this.listeners) listener(s, u, d);
      } catch {
        // not ours
      }
    });
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
