import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { chooseDelay, retryAfterSeconds, serverDelayMs } from '../../src/retry/delay.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const policy = { baseDelayMs: 250, maxDelayMs: 10_000 };

test('retry-after-ms and Retry-After delay-seconds', () => {
  assert.equal(serverDelayMs({ 'retry-after-ms': '1500' }, NOW), 1500);
  assert.equal(serverDelayMs({ 'retry-after': '2' }, NOW), 2000);
  assert.equal(serverDelayMs({ 'retry-after': '0.5' }, NOW), 500);
  assert.equal(serverDelayMs({ 'retry-after-ms': '100', 'retry-after': '9' }, NOW), 100, 'the precise one wins');
});

test('Retry-After as an HTTP-date, in the future and in the past', () => {
  assert.equal(serverDelayMs({ 'retry-after': new Date(NOW + 3000).toUTCString() }, NOW), 3000);
  assert.equal(serverDelayMs({ 'retry-after': new Date(NOW - 3000).toUTCString() }, NOW), 0);
});

test('RateLimit (structured or legacy form) and RateLimit-Reset are deltas in seconds', () => {
  assert.equal(serverDelayMs({ ratelimit: '"default";r=0;t=7' }, NOW), 7000);
  assert.equal(serverDelayMs({ ratelimit: 'limit=10, remaining=0, reset=4' }, NOW), 4000);
  assert.equal(serverDelayMs({ 'ratelimit-reset': '12' }, NOW), 12_000);
});

test('X-RateLimit-Reset: epoch seconds, epoch milliseconds or a delta, told apart by magnitude', () => {
  assert.equal(serverDelayMs({ 'x-ratelimit-reset': String(NOW / 1000 + 5) }, NOW), 5000);
  assert.equal(serverDelayMs({ 'x-ratelimit-reset': String(NOW + 2500) }, NOW), 2500);
  assert.equal(serverDelayMs({ 'x-ratelimit-reset': '30' }, NOW), 30_000);
  assert.equal(serverDelayMs({ 'x-ratelimit-reset': String(NOW / 1000 - 5) }, NOW), 0, 'a reset in the past means now');
});

test('garbage is ignored, never a NaN sleep', () => {
  for (const value of ['', 'soon', '-5', '1e3', 'NaN', 'Infinity', '12abc', 'Tue, 99 Foo 2026', '0x10']) {
    assert.equal(serverDelayMs({ 'retry-after': value, 'retry-after-ms': value, 'x-ratelimit-reset': value, 'ratelimit-reset': value }, NOW), null, value);
  }
  fc.assert(fc.property(fc.string(), (value) => {
    const d = serverDelayMs({ 'retry-after': value, ratelimit: value, 'x-ratelimit-reset': value }, NOW);
    return d === null || (Number.isFinite(d) && d >= 0);
  }));
});

test('a server delay is jittered upward only, to at most 1.2x', () => {
  fc.assert(fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (r) => {
    const { delayMs, source } = chooseDelay(1, { 'retry-after': '2' }, policy, NOW, () => r);
    return source === 'server' && delayMs >= 2000 && delayMs <= 2400;
  }));
});

test('without a server delay: capped exponential backoff with full jitter', () => {
  assert.equal(chooseDelay(1, null, policy, NOW, () => 0.999).delayMs, 249);
  assert.equal(chooseDelay(3, null, policy, NOW, () => 0.999).delayMs, 999);
  assert.equal(chooseDelay(30, null, policy, NOW, () => 0.999).delayMs, 9990, 'capped at maxDelayMs');
  assert.equal(chooseDelay(2, {}, policy, NOW, () => 0).delayMs, 0);
  fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, r) => {
    const { delayMs } = chooseDelay(n, null, policy, NOW, () => r);
    return delayMs >= 0 && delayMs < policy.maxDelayMs;
  }));
});

test('Retry-After values are whole seconds, rounded up', () => {
  assert.equal(retryAfterSeconds(1), '1');
  assert.equal(retryAfterSeconds(1000), '1');
  assert.equal(retryAfterSeconds(1001), '2');
  assert.equal(retryAfterSeconds(0), '0');
});
