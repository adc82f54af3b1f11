// readBody: the exact bytes, the size limit, and an agent that leaves before the end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { WriteguardError } from '../../src/errors.js';
import { readBody } from '../../src/proxy/body.js';

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

test('a declared length over the limit is refused before a byte is read', async () => {
  await assert.rejects(readBody(new PassThrough(), '2048', 1024), (err) => err instanceof WriteguardError && err.code === 'body_too_large');
});

test('a body that grows past the limit is refused; the stream is paused, not destroyed (the 413 must still leave)', async () => {
  const stream = new PassThrough();
  const read = readBody(stream, undefined, 8);
  stream.write(Buffer.alloc(6));
  stream.write(Buffer.alloc(6));
  await assert.rejects(read, (err) => err instanceof WriteguardError && err.code === 'body_too_large');
  assert.equal(stream.destroyed, false);
  assert.equal(stream.isPaused(), true);
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
