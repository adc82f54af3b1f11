// The cooldown channel's subscriber connection when it is lost again just as it reconnects: the
// resubscribe must not become an unhandled rejection (which ends a Node process), and the
// subscription must come back on the next connection. The loss is made exact: the reply to the
// reconnect's ready check arrives on a socket this test has just ended, so a command sent while
// that reply is handled fails with "Stream isn't writeable" (as a Redis stopped mid-run once did in CI).
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createSubscriber } from '../../src/store/redis/subscriber.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';
import { eventually } from '../helpers/wait.js';

let redis: RedisServer;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.stop();
});

test('a subscriber lost again while it reconnects: no unhandled rejection, and subscribed on the next connection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const received: string[] = [];
  const subscriber = createSubscriber(redisStoreConfig(redis.url), 'wg-test-channel', (m) => void received.push(m));
  const publisher = new Redis(redis.url);
  try {
    const publishUntilHeard = async (message: string, what: string): Promise<void> =>
      eventually(async () => (await publisher.publish('wg-test-channel', message), received.includes(message)), 5000, { what });
    await publishUntilHeard('first', 'the first subscription');

    let connects = 0;
    subscriber.on('connect', () => {
      connects++;
      if (connects !== 1) return;
      // The first reconnect: end our side of the socket as the ready check's reply (INFO) comes
      // in, before ioredis parses it (a prepended listener runs first).
      const stream = (subscriber as Redis).stream as Socket;
      const endOnInfo = (chunk: Buffer): void => {
        if (!chunk.includes('redis_version:')) return;
        stream.off('data', endOnInfo);
        stream.end();
      };
      stream.prependListener('data', endOnInfo);
    });
    ((subscriber as Redis).stream as Socket).destroy();

    await publishUntilHeard('after', 'the subscription after the reconnects');
    assert.ok(connects >= 2, `${connects} reconnects: the lost one and the one after it`);
    assert.deepEqual(unhandled, [], 'no unhandled rejection');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    subscriber.disconnect();
    publisher.disconnect();
  }
});
