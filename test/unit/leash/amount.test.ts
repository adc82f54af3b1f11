import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LosslessNumber, parse } from 'lossless-json';
import { MAX_SCALE, parseAmount } from '../../../src/leash/amount.js';

const MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** The exact reference: `minor` written as a decimal with exactly `scale` places, by string work only. */
function format(minor: bigint, scale: number): string {
  if (scale === 0) return minor.toString();
  const digits = minor.toString().padStart(scale + 1, '0');
  return `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** The same value without trailing zeros in the fraction (`24.50` → `24.5`, `24.00` → `24`). */
function trimmed(text: string): string {
  return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
}

/** The field as the proxy sees it: a JSON body parsed by lossless-json. */
function fromBody(json: string): unknown {
  return (parse(`{"amount":${json}}`) as { amount: unknown }).amount;
}

function accepted(value: unknown, scale: number): number {
  const result = parseAmount(value, scale);
  assert.ok(result.ok, `${String(value)} at scale ${scale} was refused: ${result.ok ? '' : result.reason}`);
  return result.minor;
}

function refused(value: unknown, scale: number, reason: RegExp): void {
  const result = parseAmount(value, scale);
  assert.equal(result.ok, false, `${String(value)} at scale ${scale} was accepted`);
  if (!result.ok) assert.match(result.reason, reason, String(value));
}

test('decimal text in minor units: "24.50", "24.5" and "24" at scale 2; 7 at scale 0', () => {
  assert.equal(accepted('24.50', 2), 2450);
  assert.equal(accepted('24.5', 2), 2450);
  assert.equal(accepted('24', 2), 2400);
  assert.equal(accepted(7, 0), 7);
  assert.equal(accepted(fromBody('24.50'), 2), 2450);
  assert.equal(accepted(fromBody('7'), 0), 7);
  assert.equal(accepted(new LosslessNumber('0.000000000000000001'), 18), 1);
  assert.equal(accepted('0', 2), 0);
  assert.equal(accepted('0.50', 2), 50);
  assert.equal(accepted(24, 2), 2400);
  assert.equal(accepted(24n, 2), 2400);
});

test('the largest exact amount is accepted; one minor unit more is refused', () => {
  assert.equal(accepted('9007199254740991', 0), Number.MAX_SAFE_INTEGER);
  assert.equal(accepted(fromBody('90071992547409.91'), 2), Number.MAX_SAFE_INTEGER);
  assert.equal(accepted(Number.MAX_SAFE_INTEGER, 0), Number.MAX_SAFE_INTEGER);
  refused('9007199254740992', 0, /too large/);
  refused(fromBody('90071992547409.92'), 2, /too large/);
  refused(Number.MAX_SAFE_INTEGER, 1, /too large/);
  refused(9007199254740992, 0, /too large/);
  refused(MAX + 1n, 0, /too large/);
  refused(fromBody('123456789012345678901234567890'), 0, /too large/);
  refused('1', 18, /too large/); // 10^18 minor units
  refused('0'.repeat(40) + '1', 0, /leading zeros/);
});

test('missing, negative, over-precise and exponent forms are refused with a reason to act on', () => {
  refused(undefined, 2, /is missing/);
  refused(null, 2, /is missing/);
  for (const v of ['-1', '-0', '-24.50', fromBody('-1'), fromBody('-0'), -1, -0, -1n]) refused(v, 2, /negative/);
  const places = parseAmount('24.505', 2);
  assert.deepEqual(places, { ok: false, reason: 'has 3 decimal places; at most 2 allowed' });
  refused(fromBody('24.505'), 2, /3 decimal places; at most 2/);
  refused('24.500', 2, /3 decimal places/); // counted as written, as DESIGN §10.2 says
  refused('24.5', 0, /whole number/);
  for (const v of ['1e3', '1E3', '1e+3', '1.5e2', fromBody('1e3'), fromBody('1E3'), fromBody('2.5E-1')]) refused(v, 2, /exponent/);
});

test('every malformed form is refused', () => {
  refused('+1', 2, /leading '\+'/);
  for (const v of [' 1', '1 ', '1\n', '\t1', '1 000', '24.\u00a050']) refused(v, 2, /whitespace/);
  refused('', 2, /empty/);
  refused('.5', 2, /before the decimal point/);
  refused('5.', 2, /after the decimal point/);
  for (const v of ['007', '00', '00.5', '01.50']) refused(v, 2, /leading zeros/);
  for (const v of ['0x10', '0X1F', '0o7', '0b1']) refused(v, 2, /not in decimal/);
  for (const v of ['NaN', 'Infinity', '-Infinity', NaN, Infinity, -Infinity]) refused(v, 2, /finite|negative/);
  refused(NaN, 2, /not a finite number/);
  refused(Infinity, 2, /not a finite number/);
  for (const v of ['1,000', '1.2.3', 'abc', '24.50 USD', '$24', '٣', '１']) refused(v, 2, /not a decimal number|whitespace/);
  refused(24.5, 2, /cannot be read exactly/); // a double: its text may not be what was sent
  refused(true, 2, /boolean/);
  refused(false, 0, /boolean/);
  refused({ value: '1' }, 2, /an object/);
  refused(fromBody('{"value":1}'), 2, /an object/);
  refused(['1'], 2, /an array/);
  refused(Symbol('x'), 2, /a symbol/);
});

test('a scale outside 0..18 is a programming error', () => {
  for (const scale of [-1, 19, 1.5, NaN, Infinity]) assert.throws(() => parseAmount('1', scale), /scale must be an integer/);
  assert.equal(MAX_SCALE, 18);
});

const scales = fc.integer({ min: 0, max: MAX_SCALE });

test('property: any minor amount written with exactly `scale` places, trimmed, or as a JSON number parses back', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: MAX }), scales, (minor, scale) => {
      const text = format(minor, scale);
      const expected = Number(minor);
      assert.equal(accepted(text, scale), expected);
      assert.equal(accepted(trimmed(text), scale), expected);
      assert.equal(accepted(new LosslessNumber(text), scale), expected);
      assert.equal(accepted(fromBody(trimmed(text)), scale), expected);
    }),
    { numRuns: 2000 },
  );
});

test('property: a safe integer JS number is whole major units', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: MAX }), scales, (major, scale) => {
      const minor = major * 10n ** BigInt(scale);
      const result = parseAmount(Number(major), scale);
      assert.deepEqual(result.ok, minor <= MAX);
      if (result.ok) assert.equal(result.minor, Number(minor));
    }),
  );
});

test('property: more places than `scale` is refused, whatever the digits (trailing zeros included)', () => {
  const digits = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: min, maxLength: max });
  fc.assert(
    fc.property(
      scales,
      fc.integer({ min: 1, max: 6 }),
      fc.bigInt({ min: 0n, max: 10n ** 20n }),
      digits(0, 6),
      (scale, extra, whole, tail) => {
        const fraction = (tail + '0'.repeat(scale + extra)).slice(0, scale + extra);
        const text = `${whole}.${fraction}`;
        for (const value of [text, new LosslessNumber(text)]) refused(value, scale, new RegExp(`has ${scale + extra} decimal places`));
      },
    ),
  );
});

test('property: an amount over MAX_SAFE_INTEGER minor units is refused, never rounded', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: MAX + 1n, max: 10n ** 40n }), scales, (minor, scale) => {
      const text = format(minor, scale);
      refused(text, scale, /too large/);
      refused(trimmed(text), scale, /too large/);
      refused(fromBody(text), scale, /too large/);
    }),
  );
});

test('property: on any text, the parser never throws and agrees with the strict reference grammar', () => {
  const text = fc.string({ unit: fc.constantFrom(...'0123456789.-+eExX \t'), maxLength: 24 });
  fc.assert(
    fc.property(text, scales, (value, scale) => {
      const result = parseAmount(value, scale);
      const m = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/.exec(value);
      const fraction = m?.[2] ?? '';
      const minor = m && fraction.length <= scale ? BigInt(m[1]! + fraction.padEnd(scale, '0')) : null;
      if (minor !== null && minor <= MAX) assert.deepEqual(result, { ok: true, minor: Number(minor) });
      else assert.equal(result.ok, false, value);
    }),
    { numRuns: 3000 },
  );
});
