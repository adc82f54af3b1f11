// The Redis store when Redis misbehaves: down, restarted with and without its data, frozen
// (SIGSTOP), without replicas; and the sentinel rules that keep writes off an amnesiac store.
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/observe/logger.js';
import { ackStore, createRedisStore, initStore, type RedisStore, type StoreConfig } from '../../src/store/index.js';
import {
  NO_LEASH,
  StoreUnavailableError,
  type BeginInput,
  type BeginResult,
  type IdemRecord,
  type RecordKey,
  type Store,
} from '../../src/store/store.js';
import { redisStoreConfig, startRedis, type RedisServer } from '../helpers/redis.js';
import { eventually, until } from '../helpers/wait.js';

const COMMAND_TIMEOUT_MS = 300;
/** What "quickly" means: the command timeout, the deadline margin, and a scheduler's slack. */
const FAIL_FAST_MS = COMMAND_TIMEOUT_MS + 400;
const meta = { method: 'POST', path: '/v1/payments', keySource: 'client' as const };

const servers: RedisServer[] = [];
const stores: Store[] = [];
const raws: Redis[] = [];

after(async () => {
  for (const store of stores) await store.close();
  for (const raw of raws) raw.disconnect();
  for (const server of servers) await server.stop();
});

async function server(appendonly: boolean): Promise<RedisServer> {
  const s = await startRedis({ appendonly });
  servers.push(s);
  return s;
}

function config(s: RedisServer, over: Partial<StoreConfig> = {}): StoreConfig {
  return redisStoreConfig(s.url, {
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    keyPrefix: `t${randomUUID().slice(0, 8)}:`,
    initOnEmpty: true,
    ...over,
  });
}

async function open(cfg: StoreConfig, expectReady = true, lines?: string[]): Promise<RedisStore> {
  const log =
    lines === undefined ? undefined : createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
  const store = createRedisStore(cfg, log, { checkIntervalMs: 200 });
  stores.push(store);
  if (expectReady) assert.equal(await store.whenReady(5000), true, `not ready: ${store.notReadyReason()?.detail}`);
  return store;
}

function raw(s: RedisServer): Redis {
  const client = new Redis(s.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => undefined);
  raws.push(client);
  return client;
}

function newKey(): RecordKey {
  return { scope: 'live:agent-1', upstream: 'payments', keyHash: randomUUID().replaceAll('-', '') };
}

function input(key: RecordKey, over: Partial<BeginInput> = {}): BeginInput {
  return {
    key,
    fingerprint: 'fp',
    upstreamKey: 'uk',
    owner: randomUUID(),
    leaseMs: 5000,
    mode: 'join',
    reclaimUnknown: false,
    meta,
    intent: null,
    charges: [],
    pointer: null,
    approval: null,
    ...over,
  };
}

/** A begin the leash cannot refuse (no intent, no charges): its answer always has a record. */
async function begin(store: Store, given: BeginInput): Promise<Extract<BeginResult, { record: IdemRecord }>> {
  const result = await store.begin(given);
  assert.ok('record' in result, `unexpected ${result.outcome}`);
  return result;
}

/** Times a call that must fail with StoreUnavailableError; returns the elapsed ms. */
async function failsFast(work: () => Promise<unknown>): Promise<{ ms: number; error: StoreUnavailableError }> {
  const start = performance.now();
  const error = await work().then(
    () => assert.fail('expected StoreUnavailableError'),
    (err: unknown) => err,
  );
  const ms = performance.now() - start;
  assert.ok(error instanceof StoreUnavailableError, `got ${String(error)}`);
  assert.equal(error.code, 'store_unavailable');
  return { ms, error };
}

async function completeOne(store: Store, key: RecordKey, body = 'ok'): Promise<void> {
  const r = await store.begin(input(key));
  assert.equal(r.outcome, 'acquired');
  const fence = { key, owner: r.record.owner, epoch: r.record.epoch, leash: r.record.leash };
  assert.equal(await store.markSent(fence, 5000), 'ok');
  const response = { status: 201, headers: {}, body: Buffer.from(body) };
  assert.equal(await store.finish(fence, { kind: 'complete', status: 201, requestId: null, response, ttlSec: 60, tombstoneSec: 60 }), 'ok');
}

describe('Redis down and back', () => {
  let s: RedisServer;
  before(async () => {
    s = await server(true);
  });

  test('stopped: begin fails fast with StoreUnavailableError and ready() is false; restarted with AOF: works again, same store object', async () => {
    const store = await open(config(s));
    const key = newKey();
    await completeOne(store, key);
    await s.stop();
    await eventually(() => !store.ready(), 3000, { what: 'the store to turn unready' });
    const { ms } = await failsFast(() => store.begin(input(newKey())));
    assert.ok(ms < FAIL_FAST_MS, `took ${ms} ms`);
    await failsFast(() => store.get(key));
    await failsFast(() => store.deadLetters(10));
    await s.restart();
    assert.equal(await store.whenReady(8000), true, `not ready: ${store.notReadyReason()?.detail}`);
    const replay = await store.begin(input(key));
    assert.equal(replay.outcome, 'replay');
    assert.equal(replay.record.response!.body.toString(), 'ok');
  });

  test('an outage is logged once (warn when lost, info when back), never with a key or a body', async () => {
    const lines: string[] = [];
    const store = await open(config(s), true, lines);
    const key = newKey();
    await completeOne(store, key, 'BODY-TEXT-THAT-MUST-NOT-BE-LOGGED');
    await s.stop();
    // Until the store notices the outage, a replay of this completed key may still come from the
    // instance's replay cache (a final answer, no write runs); once it has, nothing is served.
    await eventually(() => !store.ready(), 3000, { what: 'the store to turn unready' });
    await failsFast(() => store.begin(input(key)));
    await sleep(1200);
    await s.restart();
    assert.equal(await store.whenReady(8000), true);
    const parsed = lines.map((l) => JSON.parse(l) as { level: string; msg: string });
    const warns = parsed.filter((l) => l.level === 'warn');
    assert.equal(warns.length, 1, JSON.stringify(warns));
    assert.equal(parsed.filter((l) => l.level === 'info' && l.msg === 'store ready').length, 2);
    const all = lines.join('\n');
    assert.ok(!all.includes(key.keyHash));
    assert.ok(!all.includes('BODY-TEXT-THAT-MUST-NOT-BE-LOGGED'));
    assert.ok(!all.includes(Buffer.from('BODY-TEXT-THAT-MUST-NOT-BE-LOGGED').toString('base64')));
  });

  test('frozen (SIGSTOP): begin fails within the command timeout, never hangs; SIGCONT: works again', async () => {
    const store = await open(config(s));
    const key = newKey();
    s.kill('SIGSTOP');
    try {
      const { ms, error } = await failsFast(() => store.begin(input(key)));
      assert.ok(ms < FAIL_FAST_MS, `took ${ms} ms`);
      assert.match(error.message, /timed out/);
      const second = await failsFast(() => store.finish({ key, owner: 'o', epoch: 1, leash: NO_LEASH }, { kind: 'release' }));
      assert.ok(second.ms < FAIL_FAST_MS, `took ${second.ms} ms`);
      // The periodic check cannot reach the store either.
      await eventually(() => !store.ready(), 3000, { what: 'the store to turn unready' });
    } finally {
      s.kill('SIGCONT');
    }
    assert.equal(await store.whenReady(5000), true);
    // The begin that timed out may still have run once Redis woke: either way the key answers.
    const r = await store.begin(input(key));
    assert.ok(r.outcome === 'acquired' || r.outcome === 'in_use', r.outcome);
  });
});

describe('store amnesia: the sentinel', () => {
  test('Redis restarted empty: ready() stays false and begin fails closed until `store ack`', async () => {
    const s = await server(false);
    // The store's own answers: no in-process replays (replay-cache.test.ts covers those across a loss).
    const cfg = { ...config(s), replayCacheBytes: 0 };
    const store = await open(cfg);
    const key = newKey();
    await completeOne(store, key);
    await s.restart();
    // Long enough for the reconnect and several checks: it must stay closed.
    await sleep(1500);
    assert.equal(store.ready(), false);
    assert.match(store.notReadyReason()?.detail ?? '', /sentinel is gone/);
    const { error } = await failsFast(() => store.begin(input(key)));
    assert.match(error.message, /not ready/);
    // A new instance with initOnEmpty re-creates a sentinel on the empty store: the old one still refuses.
    const newcomer = await open(cfg);
    assert.equal(newcomer.ready(), true);
    await sleep(500);
    assert.equal(store.ready(), false);
    assert.match(store.notReadyReason()?.detail ?? '', /changed/);
    const { value } = await ackStore(cfg);
    assert.equal(typeof value, 'string');
    assert.equal(await store.whenReady(3000), true);
    await eventually(() => newcomer.ready(), 3000, { what: 'the new store to turn ready' });
    // The claim was forgotten with the data: after the operator's ack, the key is new again.
    assert.equal((await store.begin(input(key))).outcome, 'acquired');
  });

  test('the sentinel deleted under a live connection: writes stop within a check interval', async () => {
    const s = await server(false);
    const cfg = config(s);
    const store = await open(cfg);
    await raw(s).del(`${cfg.keyPrefix}sentinel`);
    await eventually(() => !store.ready(), 2000, { what: 'the store to turn unready' });
    await failsFast(() => store.begin(input(newKey())));
  });

  test('initOnEmpty off: an empty store waits for `store init`; init reports whether the sentinel existed', async () => {
    const s = await server(false);
    const cfg = config(s, { initOnEmpty: false });
    const store = await open(cfg, false);
    await sleep(400);
    assert.equal(store.ready(), false);
    assert.match(store.notReadyReason()?.detail ?? '', /store init/);
    await failsFast(() => store.begin(input(newKey())));
    assert.deepEqual(await initStore(cfg), { existed: false });
    assert.equal(await store.whenReady(3000), true);
    assert.deepEqual(await initStore(cfg), { existed: true });
    assert.equal(store.ready(), true);
  });

  test('initOnEmpty on, but the store holds writeguard keys and no sentinel: not ready', async () => {
    const s = await server(false);
    const cfg = config(s);
    await raw(s).set(`${cfg.keyPrefix}{live:a}:payments:abc`, 'x');
    const store = await open(cfg, false);
    await sleep(400);
    assert.equal(store.ready(), false);
    assert.match(store.notReadyReason()?.detail ?? '', /store init/);
    await initStore(cfg);
    assert.equal(await store.whenReady(3000), true);
  });

  test('two instances on one empty store adopt the same sentinel', async () => {
    const s = await server(false);
    const cfg = config(s);
    const [a, b] = await Promise.all([open(cfg), open(cfg)]);
    const value = await raw(s).get(`${cfg.keyPrefix}sentinel`);
    assert.ok(value);
    // Both keep working after a further check: neither saw a value other than the stored one.
    await sleep(300);
    assert.equal(a.ready(), true);
    assert.equal(b.ready(), true);
  });
});

describe('waitReplicas', () => {
  let s: RedisServer;
  before(async () => {
    s = await server(false);
  });

  test('a claim no replica acknowledged is released and refused; finish is refused', async () => {
    const cfg = config(s, { waitReplicas: 1, waitTimeoutMs: 50 });
    const waiting = await open(cfg);
    const plain = await open({ ...cfg, waitReplicas: 0 });
    const key = newKey();
    await failsFast(() => waiting.begin(input(key)));
    assert.equal(await plain.get(key), null);

    // A takeover that replicas did not confirm keeps the record, with its lease already over.
    const first = await begin(plain, input(key, { leaseMs: 100 }));
    await sleep(150);
    await failsFast(() => waiting.begin(input(key)));
    const after = await plain.begin(input(key));
    assert.equal(after.outcome, 'acquired');
    assert.equal(after.record.epoch, 3);
    assert.equal(after.record.upstreamKey, first.record.upstreamKey);

    const fence = { key, owner: after.record.owner, epoch: after.record.epoch, leash: after.record.leash };
    assert.equal(await plain.markSent(fence, 5000), 'ok');
    await failsFast(() => waiting.finish(fence, { kind: 'unknown', status: null, requestId: null, reason: 'reset' }));
  });

  test('with a live replica begin and finish pass; with the replica frozen the claim is refused and released', async () => {
    const master = await startRedis({ args: ['--repl-diskless-sync-delay', '0'] });
    servers.push(master);
    const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] });
    servers.push(replica);
    // The replica acknowledges nothing before its first sync: wait until it does.
    const primary = raw(master);
    await until(
      async () => {
        await primary.set('warm-up', '1');
        return (await primary.wait(1, 200)) === 1;
      },
      { timeoutMs: 5000 },
    );
    const waiting = config(master, { waitReplicas: 1, waitTimeoutMs: 200 });
    const store = await open(waiting);
    const done = newKey();
    await completeOne(store, done, 'raw \n\x00\xff bytes');
    // Its replay from Redis (no replay cache) comes back through the same pipeline as the WAIT, as Buffers.
    const fromRedis = await open({ ...waiting, replayCacheBytes: 0 });
    try {
      const replay = await fromRedis.begin(input(done));
      assert.equal(replay.outcome, 'replay');
      assert.ok(replay.outcome === 'replay' && replay.record.response!.body.equals(Buffer.from('raw \n\x00\xff bytes')));
    } finally {
      await fromRedis.close();
    }
    replica.kill('SIGSTOP');
    try {
      const other = newKey();
      await failsFast(() => store.begin(input(other)));
      assert.equal(await store.get(other), null);
    } finally {
      replica.kill('SIGCONT');
    }
  });

  test('a reclaimed unknown record that replicas did not confirm goes back to outcome_unknown', async () => {
    const cfg = config(s, { waitReplicas: 1, waitTimeoutMs: 50 });
    const waiting = await open(cfg);
    const plain = await open({ ...cfg, waitReplicas: 0 });
    const key = newKey();
    const r = await begin(plain, input(key));
    const fence = { key, owner: r.record.owner, epoch: r.record.epoch, leash: r.record.leash };
    await plain.markSent(fence, 5000);
    await plain.finish(fence, { kind: 'unknown', status: null, requestId: null, reason: 'reset' });
    await failsFast(() => waiting.begin(input(key, { reclaimUnknown: true })));
    const now = await plain.get(key);
    assert.equal(now?.state, 'outcome_unknown');
    assert.equal(now?.epoch, 2);
    assert.equal((await plain.deadLetters(10)).length, 1);
  });
});

describe('key layout and expiry', () => {
  let s: RedisServer;
  before(async () => {
    s = await server(false);
  });

  test('one hash tag per agent; TTLs: none while in flight or unknown, response then tombstone once completed', async () => {
    const cfg = config(s);
    const store = await open(cfg);
    const r = raw(s);
    const key = newKey();
    const recordKey = `${cfg.keyPrefix}{${key.scope}}:${key.upstream}:${key.keyHash}`;
    const dlqKey = `${cfg.keyPrefix}{${key.scope}}:dlq`;
    const begun = await begin(store, input(key));
    assert.equal(await r.pttl(recordKey), -1);
    const fence = { key, owner: begun.record.owner, epoch: 1, leash: begun.record.leash };
    await store.markSent(fence, 5000);
    await store.finish(fence, { kind: 'unknown', status: null, requestId: null, reason: 'reset' });
    assert.equal(await r.pttl(recordKey), -1);
    assert.equal((await r.zscore(dlqKey, `${key.upstream}:${key.keyHash}`)) !== null, true);
    const response = { status: 200, headers: {}, body: Buffer.from([0]) };
    assert.equal(
      await store.resolve(
        key,
        { epoch: 1, leash: begun.record.leash },
        { kind: 'executed', status: 200, response, ttlSec: 10, tombstoneSec: 20 },
      ),
      'ok',
    );
    const recordTtl = await r.pttl(recordKey);
    const respTtl = await r.pttl(`${recordKey}:resp`);
    assert.ok(recordTtl > 29_000 && recordTtl <= 30_000, `record ttl ${recordTtl}`);
    assert.ok(respTtl > 9_000 && respTtl <= 10_000, `response ttl ${respTtl}`);
    assert.equal(await r.exists(dlqKey), 0);
    // Only the record, its response and the sentinel exist under the prefix.
    const keys = (await r.keys(`${cfg.keyPrefix}*`)).sort();
    assert.deepEqual(keys, [`${cfg.keyPrefix}sentinel`, recordKey, `${recordKey}:resp`].sort());
  });

  test('store errors never carry keys or bodies', async () => {
    const s2 = await server(false);
    const store = await open(config(s2));
    const key = newKey();
    const r = await begin(store, input(key));
    s2.kill('SIGSTOP');
    try {
      const secret = 'SECRET-BODY-' + randomUUID();
      const response = { status: 201, headers: {}, body: Buffer.from(secret) };
      const { error } = await failsFast(() =>
        store.finish(
          { key, owner: r.record.owner, epoch: 1, leash: r.record.leash },
          { kind: 'complete', status: 201, requestId: null, response, ttlSec: 1, tombstoneSec: 1 },
        ),
      );
      const text = `${error.message} ${JSON.stringify(error)} ${String(error.cause)}`;
      assert.ok(!text.includes(key.keyHash) && !text.includes(Buffer.from(secret).toString('base64')) && !text.includes(secret), text);
    } finally {
      s2.kill('SIGCONT');
    }
  });
});
