// Commands sent to Redis in one turn of the event loop leave in one socket write (client.ts
// coalescingWrites), and each still gets its own answer; a turn later, a new batch starts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Socket } from 'node:net';
import { Redis } from 'ioredis';
import { coalescingWrites } from '../../src/store/redis/client.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

let redis: RedisServer;
let client: Redis;

before(async () => {
  redis = await startRedis();
  client = new Redis(redis.url, { lazyConnect: true });
  await client.connect();
});

after(async () => {
  client.disconnect();
  await redis.stop();
});

/** Counts the socket's writes to the kernel: one `_writev` (several chunks) or `_write` (one) each. */
function countWrites(socket: Socket): { writes: number[]; restore(): void } {
  const writes: number[] = [];
  const own = socket as unknown as { _writev: (chunks: unknown[], cb: unknown) => void; _write: (...args: unknown[]) => void };
  const [writev, write] = [own._writev, own._write];
  own._writev = function (chunks, cb) {
    writes.push(chunks.length);
    return writev.call(this, chunks, cb);
  };
  own._write = function (...args) {
    writes.push(1);
    return write.apply(this, args);
  };
  return {
    writes,
    restore: () => Object.assign(own, { _writev: writev, _write: write }),
  };
}

test('twenty commands sent in one turn leave in one write, each answered with its own value', async () => {
  const coalesce = coalescingWrites(client);
  await client.mset(Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`coalesce:${i}`, `v${i}`])));
  const spy = countWrites(client.stream as Socket);
  try {
    const replies = Array.from({ length: 20 }, (_, i) => {
      coalesce();
      return client.get(`coalesce:${i}`);
    });
    assert.deepEqual(
      await Promise.all(replies),
      Array.from({ length: 20 }, (_, i) => `v${i}`),
    );
    assert.deepEqual(spy.writes, [20], 'one write of 20 commands');
  } finally {
    spy.restore();
  }
});

test('without coalescing each command is its own write; a later turn starts a new batch', async () => {
  const coalesce = coalescingWrites(client);
  const spy = countWrites(client.stream as Socket);
  try {
    await Promise.all([client.get('coalesce:0'), client.get('coalesce:1')]);
    assert.deepEqual(spy.writes, [1, 1], 'the control: two commands, two writes');
    spy.writes.length = 0;
    coalesce();
    const first = [client.get('coalesce:2'), client.get('coalesce:3')];
    await nextTurn();
    coalesce();
    const second = [client.get('coalesce:4'), client.get('coalesce:5')];
    assert.deepEqual(await Promise.all([...first, ...second]), ['v2', 'v3', 'v4', 'v5']);
    assert.deepEqual(spy.writes, [2, 2], 'one write per turn');
  } finally {
    spy.restore();
  }
});
