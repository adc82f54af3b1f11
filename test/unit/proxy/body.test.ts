// readBody: the exact bytes, the size limit, the bounded drain of a refused body, and an agent that
// leaves before the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { WriteguardError } from '../../../src/errors.js';
import { DRAIN_MIN_BYTES, DRAIN_MS, drainBounds, readBody } from '../../../src/proxy/body.js';

test('a body in several chunks comes back byte for byte', async () => {
  const stream = new PassThrough();
  const read = readBody(stream, undefined, 1024);
  stream.write(Buffer.from('{"amount":'));
  stream.end(Buffer.from('1250}'));
  assert.equal((await read).toString(), '{"amount":1250}');
});

test('no body stream is an empty body', async () => {
  assert.equal((await readBody(undefined, undefined, 10)).length, 0);
});

const tooLarge = (err: unknown): boolean =>
  err instanceof WriteguardError && err.code === 'body_too_large' && err.headers?.connection === 'close';

/** Tracks whether a promise has settled yet (without ever leaving it unhandled). */
function watch<T>(promise: Promise<T>): { settled: () => boolean } {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  return { settled: () => settled };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const LONG = 60_000; // a drain time no test should reach

test('the default drain bounds: max(32 MiB, 4 × maxBodyBytes), 5 s', () => {
  assert.deepEqual(drainBounds(1_048_576), { bytes: DRAIN_MIN_BYTES, ms: DRAIN_MS });
  assert.equal(DRAIN_MIN_BYTES, 32 * 1024 * 1024);
  assert.equal(drainBounds(20 * 1024 * 1024).bytes, 80 * 1024 * 1024);
  assert.equal(DRAIN_MS, 5_000);
});

test('a declared length past the drain bound is refused before a byte is read', async () => {
  const stream = new PassThrough();
  await assert.rejects(readBody(stream, '4096', 1024, { bytes: 2048, ms: LONG }), tooLarge);
  assert.equal(stream.readableFlowing, null);
  assert.equal(stream.destroyed, false);
});

test('a declared length over the limit with no stream is refused at once', async () => {
  await assert.rejects(readBody(undefined, '2048', 1024), tooLarge);
});

test('a declared length over the limit (within the drain bound) is read to its end, then refused', async () => {
  const stream = new PassThrough();
  const read = readBody(stream, '4096', 1024, { bytes: 8192, ms: LONG });
  const state = watch(read);
  stream.write(Buffer.alloc(2048));
  await tick();
  assert.equal(state.settled(), false, 'no answer while the body is still coming: closing now would reset the connection');
  stream.end(Buffer.alloc(2048));
  await assert.rejects(read, tooLarge);
  assert.equal(stream.readableEnded, true);
});

test('a body that grows past the limit is read to its end and thrown away, then refused (the 413 must still leave)', async () => {
  const stream = new PassThrough();
  const read = readBody(stream, undefined, 8, { bytes: 1024, ms: LONG });
  const state = watch(read);
  stream.write(Buffer.alloc(6));
  stream.write(Buffer.alloc(6));
  stream.write(Buffer.alloc(100));
  await tick();
  assert.equal(state.settled(), false);
  stream.end(Buffer.alloc(100));
  await assert.rejects(read, tooLarge);
  assert.equal(stream.readableEnded, true);
});

test('past the drain byte bound, reading stops: refused; the stream is paused, not destroyed', async () => {
  const stream = new PassThrough();
  const read = readBody(stream, undefined, 8, { bytes: 32, ms: LONG });
  stream.write(Buffer.alloc(12));
  stream.write(Buffer.alloc(24));
  await assert.rejects(read, tooLarge);
  assert.equal(stream.destroyed, false);
  assert.equal(stream.isPaused(), true);
});

test('a client that stalls mid-drain is refused after the drain time, never waited on for ever', async () => {
  const stream = new PassThrough();
  const started = Date.now();
  const read = readBody(stream, undefined, 8, { bytes: 1024, ms: 50 });
  stream.write(Buffer.alloc(12));
  await assert.rejects(read, tooLarge);
  assert.ok(Date.now() - started < 2000);
  assert.equal(stream.destroyed, false);
  assert.equal(stream.isPaused(), true);
});

test('a client that leaves mid-drain: still refused as too large, no wait', async () => {
  const stream = new PassThrough();
  const read = readBody(stream, '4096', 1024, { bytes: 8192, ms: LONG });
  stream.write(Buffer.alloc(2048));
  await tick();
  stream.destroy();
  await assert.rejects(read, tooLarge);
});

test('a body exactly at the limit passes', async () => {
  const stream = new PassThrough();
  const read = readBody(stream, '8', 8, { bytes: 32, ms: LONG });
  stream.end(Buffer.alloc(8, 0x61));
  assert.equal((await read).toString(), 'aaaaaaaa');
});

test('a stream that closes before its end rejects instead of waiting forever', async () => {
  const stream = new PassThrough();
  const read = readBody(stream, undefined, 1024);
  stream.write(Buffer.from('{"amo'));
  stream.destroy();
  await assert.rejects(read, (err: Error & { code?: string }) => err.message === 'aborted' && err.code === 'ECONNRESET');
});

test('a stream error rejects with that error', async () => {
  const stream = new PassThrough();
  const read = readBody(stream, undefined, 1024);
  stream.destroy(new Error('boom'));
  await assert.rejects(read, /boom/);
});
