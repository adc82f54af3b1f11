import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { chooseDelay, retryAfterSeconds, serverDelayMs } from '../../../src/retry/delay.js';
import { parseHttpDate } from '../../../src/retry/http-date.js';

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
  // Several policies: the exhausted one decides, not the first (waiting 1 s would retry into a spent daily quota).
  assert.equal(serverDelayMs({ ratelimit: '"burst";r=5;t=1, "daily";r=0;t=3600' }, NOW), 3_600_000);
  assert.equal(serverDelayMs({ ratelimit: '"a";r=0;t=2, "b";r=0;t=9, "c";r=4;t=60' }, NOW), 9000, 'the longest of the exhausted');
  assert.equal(serverDelayMs({ ratelimit: '"a";r=3;t=2, "b";r=1;t=9' }, NOW), 9000, 'none exhausted: the longest');
  // A quoted policy name holding "t=5" is a name: the parameter decides.
  assert.equal(serverDelayMs({ ratelimit: '"t=5";r=0;t=40' }, NOW), 40_000);
  assert.equal(serverDelayMs({ ratelimit: '"x;t=5"' }, NOW), null, 'no t parameter at all: nothing said');
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
    assert.equal(
      serverDelayMs({ 'retry-after': value, 'retry-after-ms': value, 'x-ratelimit-reset': value, 'ratelimit-reset': value }, NOW),
      null,
      value,
    );
  }
  fc.assert(
    fc.property(fc.string(), (value) => {
      const d = serverDelayMs({ 'retry-after': value, ratelimit: value, 'x-ratelimit-reset': value }, NOW);
      return d === null || (Number.isFinite(d) && d >= 0);
    }),
  );
});

test('a server delay is jittered upward only, to at most 1.2x', () => {
  fc.assert(
    fc.property(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (r) => {
      const { delayMs, source } = chooseDelay(1, { 'retry-after': '2' }, policy, NOW, () => r);
      return source === 'server' && delayMs >= 2000 && delayMs <= 2400;
    }),
  );
});

test('without a server delay: capped exponential backoff with full jitter', () => {
  assert.equal(chooseDelay(1, null, policy, NOW, () => 0.999).delayMs, 249);
  assert.equal(chooseDelay(3, null, policy, NOW, () => 0.999).delayMs, 999);
  assert.equal(chooseDelay(30, null, policy, NOW, () => 0.999).delayMs, 9990, 'capped at maxDelayMs');
  assert.equal(chooseDelay(2, {}, policy, NOW, () => 0).delayMs, 0);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 100 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, r) => {
      const { delayMs } = chooseDelay(n, null, policy, NOW, () => r);
      return delayMs >= 0 && delayMs < policy.maxDelayMs;
    }),
  );
});

test('Retry-After values are whole seconds, rounded up', () => {
  assert.equal(retryAfterSeconds(1), '1');
  assert.equal(retryAfterSeconds(1000), '1');
  assert.equal(retryAfterSeconds(1001), '2');
  assert.equal(retryAfterSeconds(0), '0');
});

// --- Strict HTTP-date (RFC 9110 §5.6.7): the three forms, valid ranges, UTC only, nothing else. ---

const SUN_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);

test('HTTP-date: IMF-fixdate, RFC 850 and asctime all read as the same UTC instant', () => {
  assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW), SUN_1994);
  assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW), SUN_1994);
  assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW), SUN_1994);
  assert.equal(parseHttpDate('Sun Nov 06 08:49:37 1994', NOW), SUN_1994, 'asctime day as 2DIGIT');
  assert.equal(parseHttpDate('Thu Nov 26 08:49:37 2026', NOW), Date.UTC(2026, 10, 26, 8, 49, 37));
  // Surrounding OWS is not part of the value; anything else is.
  assert.equal(parseHttpDate(' \tSun, 06 Nov 1994 08:49:37 GMT ', NOW), SUN_1994);
  // What toUTCString writes is an IMF-fixdate.
  fc.assert(
    fc.property(fc.integer({ min: Date.UTC(1000, 0, 1), max: Date.UTC(9999, 11, 31, 23, 59, 59) }), (t) => {
      const whole = t - (((t % 1000) + 1000) % 1000);
      return parseHttpDate(new Date(whole).toUTCString(), NOW) === whole;
    }),
  );
});

test('HTTP-date: ranges are checked (day of the month incl. leap years, hour, minute, second 60 for a leap second)', () => {
  assert.equal(parseHttpDate('Thu, 29 Feb 2024 00:00:00 GMT', NOW), Date.UTC(2024, 1, 29));
  assert.equal(parseHttpDate('Tue, 29 Feb 2000 00:00:00 GMT', NOW), Date.UTC(2000, 1, 29), '2000 is a leap year');
  assert.equal(parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT', NOW), Date.UTC(2017, 0, 1), 'leap second: the next instant');
  for (const bad of [
    'Sat, 29 Feb 2025 00:00:00 GMT',
    'Mon, 29 Feb 1900 00:00:00 GMT',
    'Fri, 31 Apr 2026 00:00:00 GMT',
    'Sun, 32 Jan 2026 00:00:00 GMT',
    'Sun, 00 Jan 2026 00:00:00 GMT',
    'Sun, 06 Nov 1994 24:00:00 GMT',
    'Sun, 06 Nov 1994 08:60:00 GMT',
    'Sun, 06 Nov 1994 08:49:61 GMT',
    'Sunday, 31-Jun-94 08:49:37 GMT',
    'Sun Feb 30 08:49:37 1994',
    'Sun Nov  6 25:49:37 1994',
  ])
    assert.equal(parseHttpDate(bad, NOW), null, bad);
});

test('HTTP-date: a two-digit year more than 50 years in the future is in the past century (relative to now)', () => {
  // now = 2026-11-22: "94" is 1994 (2094 would be 68 years ahead), "26" is 2026, "76" is 2076.
  assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW), SUN_1994);
  assert.equal(parseHttpDate('Sunday, 22-Nov-26 12:00:00 GMT', NOW), NOW);
  assert.equal(parseHttpDate('Sunday, 01-Jan-76 00:00:00 GMT', NOW), Date.UTC(2076, 0, 1));
  // The boundary is the instant 50 years from now, not the year.
  assert.equal(parseHttpDate('Sunday, 22-Nov-76 12:00:00 GMT', NOW), Date.UTC(2076, 10, 22, 12), 'exactly 50 years ahead: not more');
  assert.equal(parseHttpDate('Sunday, 22-Nov-76 12:00:01 GMT', NOW), Date.UTC(1976, 10, 22, 12, 0, 1), 'one second more: last century');
  assert.equal(parseHttpDate('Sunday, 01-Jan-77 00:00:00 GMT', NOW), Date.UTC(1977, 0, 1));
  // "now" is a parameter: in 2090, "10" is 2110 (20 years ahead), "41" is 2141 (51 years ahead → 2041).
  const in2090 = Date.UTC(2090, 5, 1);
  assert.equal(parseHttpDate('Sunday, 01-Jan-10 00:00:00 GMT', in2090), Date.UTC(2110, 0, 1));
  assert.equal(parseHttpDate('Sunday, 01-Jun-40 00:00:00 GMT', in2090), Date.UTC(2140, 5, 1));
  assert.equal(parseHttpDate('Sunday, 01-Jun-41 00:00:00 GMT', in2090), Date.UTC(2041, 5, 1));
  // Leap day validity follows the resolved year: 29-Feb-00 is 2000 (leap) now, 2100 (not leap) in 2090.
  assert.equal(parseHttpDate('Tuesday, 29-Feb-00 00:00:00 GMT', NOW), Date.UTC(2000, 1, 29));
  assert.equal(parseHttpDate('Monday, 29-Feb-00 00:00:00 GMT', in2090), null);
});

test('HTTP-date: a weekday name is required in its form; one that does not match the date is tolerated', () => {
  // 06 Nov 1994 was a Sunday. The numeric fields decide the instant (RFC 9110 asks recipients to be robust).
  assert.equal(parseHttpDate('Mon, 06 Nov 1994 08:49:37 GMT', NOW), SUN_1994);
  assert.equal(parseHttpDate('Monday, 06-Nov-94 08:49:37 GMT', NOW), SUN_1994);
  assert.equal(parseHttpDate('Mon Nov  6 08:49:37 1994', NOW), SUN_1994);
  // But it must be a day name, of the form's kind (short in IMF-fixdate and asctime, long in RFC 850).
  for (const bad of [
    'Foo, 06 Nov 1994 08:49:37 GMT',
    'Sunday, 06 Nov 1994 08:49:37 GMT',
    'Sun, 06-Nov-94 08:49:37 GMT',
    '06 Nov 1994 08:49:37 GMT',
    'Sunday Nov  6 08:49:37 1994',
  ]) {
    assert.equal(parseHttpDate(bad, NOW), null, bad);
  }
});

test('HTTP-date: garbage, other zones, other formats and extra text are refused', () => {
  for (const bad of [
    '',
    'x 99999',
    '99999',
    'soon',
    'Tue, 99 Foo 2026',
    'x 2026',
    'Sun 1994',
    'Sun, 06 Nov 1994 08:49:37 UTC',
    'Sun, 06 Nov 1994 08:49:37 +0000',
    'Sun, 06 Nov 1994 08:49:37 EST',
    'Sun, 06 Nov 1994 08:49:37',
    'Sun, 06 Nov 1994 08:49:37 GMT x',
    'Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37 gmt',
    'sun, 06 Nov 1994 08:49:37 GMT',
    'Sun, 06 nov 1994 08:49:37 GMT',
    'Sun, 06 November 1994 08:49:37 GMT',
    'Sun,  06 Nov 1994 08:49:37 GMT',
    'Sun, 6 Nov 1994 08:49:37 GMT',
    'Sun, 06 Nov 94 08:49:37 GMT',
    'Sun, 06 Nov 1994 8:49:37 GMT',
    'Sun, 06 Nov 1994 08:49 GMT',
    'Sun, 06 Nov 01994 08:49:37 GMT',
    'Sun, 06 Nov 1994 08:49:37.5 GMT',
    'Sunday, 06-Nov-1994 08:49:37 GMT',
    'Sun Nov 6 08:49:37 1994',
    'Sun Nov  6 08:49:37 1994 GMT',
    'Sun Nov  6 08:49:37 94',
    '1994-11-06T08:49:37Z',
    '1994-11-06',
    'Sun, 06 Nov 1994 08:49:37 GMT\n',
    'Sun, 06 Nov 1994 08:49:37\u00a0GMT',
    'Sun, ０6 Nov 1994 08:49:37 GMT',
  ])
    assert.equal(parseHttpDate(bad, NOW), null, JSON.stringify(bad));
  fc.assert(
    fc.property(fc.string(), (s) => {
      const t = parseHttpDate(s, NOW);
      return t === null || Number.isInteger(t);
    }),
  );
});

test('Retry-After: x 99999 is garbage, not a date in the year 99999', () => {
  assert.equal(serverDelayMs({ 'retry-after': 'x 99999' }, NOW), null);
  assert.equal(serverDelayMs({ 'retry-after': 'x 99999', 'ratelimit-reset': '3' }, NOW), 3000, 'the next header decides');
  assert.equal(serverDelayMs({ 'retry-after': 'Sun, 22 Nov 2026 12:00:09 UTC' }, NOW), null, 'only GMT');
  assert.equal(serverDelayMs({ 'retry-after': 'Sunday, 22-Nov-26 12:00:04 GMT' }, NOW), 4000);
  assert.equal(serverDelayMs({ 'retry-after': 'Sun Nov 22 12:00:05 2026' }, NOW), 5000);
});

test('Retry-After as an asctime date is UTC whatever the local time zone', () => {
  const saved = process.env.TZ;
  try {
    process.env.TZ = 'America/New_York'; // Node re-reads TZ when it changes
    assert.notEqual(new Date(NOW).getTimezoneOffset(), 0, 'the zone really changed (else this test proves nothing)');
    assert.equal(parseHttpDate('Sun Nov 22 12:00:05 2026', NOW), Date.UTC(2026, 10, 22, 12, 0, 5));
    assert.equal(serverDelayMs({ 'retry-after': 'Sun Nov 22 12:00:05 2026' }, NOW), 5000);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW), SUN_1994);
  } finally {
    if (saved === undefined) delete process.env.TZ;
    else process.env.TZ = saved;
  }
});
