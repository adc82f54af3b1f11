// An amount read from a JSON body field, as exact integer minor units (DESIGN §10.2). Pure.
//
// Never through a float: `0.1 + 0.2` is not `0.3`, and 18-decimal token amounts lose digits in a
// double, so a budget would count what the upstream did not charge. The text is read as digits
// (the caller parses bodies with lossless-json, which keeps a JSON number's text as written) and
// scaled with BigInt.
//
// The grammar is JSON's own number grammar without sign or exponent: `0` or a digit 1–9 followed by
// digits, then optionally `.` and at least one digit. Chosen for the open cases:
// - `.5` and `5.` are refused: JSON forbids both, and an amount an upstream might read
//   differently from writeguard must not be counted one way and charged another.
// - Leading zeros (`007`, `00.5`) are refused, for the same reason (JSON forbids them; a string
//   `007` may be an identifier, or octal to some parser). `0` and `0.50` are fine.
// - Places are counted as written: `24.500` at scale 2 is refused even though it is 2450 exactly,
//   as DESIGN §10.2 says ("at most `scale` places"); an upstream with a 2-place currency would
//   refuse it too.
// - Zero is an amount (a zero-value write spends nothing); only a sign makes a value negative,
//   so `-0` is refused as negative.

import { isLosslessNumber } from 'lossless-json';
import { WriteguardError } from '../errors.js';
import { readRaw } from '../observe/json-body.js';

export type AmountResult = { ok: true; minor: number } | { ok: false; reason: string };

/** The most decimal places a budget's `scale` may ask for (18: the usual ERC-20 token). */
export const MAX_SCALE = 18;

/**
 * Budget arithmetic runs in the store's Lua scripts, and Redis Lua numbers are doubles: exact for
 * integers only up to 2^53 − 1. A larger amount would be rounded there, so a cap could be overrun
 * or a hold leak; it is refused here instead.
 */
const MAX_MINOR = BigInt(Number.MAX_SAFE_INTEGER);
/** Digits of MAX_MINOR: a longer digit string is too large without building a BigInt of it. */
const MAX_MINOR_DIGITS = String(Number.MAX_SAFE_INTEGER).length;

const DECIMAL = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/;

const fail = (reason: string): AmountResult => ({ ok: false, reason });

/**
 * `value` in minor units at `scale` decimal places: `"24.50"`, `"24.5"` and `"24"` at scale 2 are
 * 2450, 2450 and 2400. Accepts a lossless-json number, a string, a non-negative safe-integer JS
 * number or a bigint (both integers in major units); anything else is refused. A refusal's
 * `reason` reads after the field's name (`body:amount has 3 decimal places; …`) and says what to
 * send instead, so an LLM can correct its request.
 * @throws Error when `scale` is not an integer 0..18: a programming error (config validates it).
 */
export function parseAmount(value: unknown, scale: number): AmountResult {
  if (!Number.isInteger(scale) || scale < 0 || scale > MAX_SCALE)
    throw new Error(`parseAmount: scale must be an integer from 0 to ${MAX_SCALE}, got ${String(scale)}`);
  if (value === undefined || value === null) return fail('is missing; send the amount as a number or a decimal string');
  if (isLosslessNumber(value)) return parseText(value.value, scale);
  if (typeof value === 'string') return parseText(value, scale);
  if (typeof value === 'number') return parseNumber(value, scale);
  if (typeof value === 'bigint') return value < 0n ? negative() : scaled(value, scale);
  if (typeof value === 'boolean') return fail(`is a boolean (${String(value)}), not an amount; send a number such as 24.50`);
  if (Array.isArray(value)) return fail('is an array, not an amount; send one number such as 24.50');
  return fail(`is ${typeof value === 'object' ? 'an object' : `a ${typeof value}`}, not an amount; send a number such as 24.50`);
}

function negative(): AmountResult {
  return fail('is negative; an amount must be zero or more');
}

/**
 * A JS number is already a double, so only integers are exact: a fraction (`24.5`) may not be the
 * text that was sent. lossless-json never yields one; this path serves callers holding integers.
 */
function parseNumber(value: number, scale: number): AmountResult {
  if (!Number.isFinite(value)) return fail('is not a finite number; send the amount as digits such as 24.50');
  if (value < 0 || Object.is(value, -0)) return negative();
  if (!Number.isInteger(value))
    return fail('is a floating-point fraction that cannot be read exactly; send it as a decimal string such as "24.50"');
  if (!Number.isSafeInteger(value)) return tooLarge();
  return scaled(BigInt(value), scale);
}

function scaled(major: bigint, scale: number): AmountResult {
  const minor = major * 10n ** BigInt(scale);
  return minor > MAX_MINOR ? tooLarge() : { ok: true, minor: Number(minor) };
}

function tooLarge(): AmountResult {
  return fail(`is too large: at most ${Number.MAX_SAFE_INTEGER} minor units can be counted exactly`);
}

function parseText(text: string, scale: number): AmountResult {
  const match = DECIMAL.exec(text);
  if (!match) return fail(malformed(text));
  const whole = match[1]!;
  const fraction = match[2] ?? '';
  if (fraction.length > scale)
    return fail(
      scale === 0
        ? `has ${fraction.length} decimal places; it must be a whole number (scale 0)`
        : `has ${fraction.length} decimal places; at most ${scale} allowed`,
    );
  // Scaling is appending the fraction's digits and padding with zeros: exact, and no float.
  const digits = (whole + fraction.padEnd(scale, '0')).replace(/^0+(?=.)/, '');
  if (digits.length > MAX_MINOR_DIGITS) return tooLarge();
  const minor = BigInt(digits);
  return minor > MAX_MINOR ? tooLarge() : { ok: true, minor: Number(minor) };
}

/** Why `text` is not a plain decimal, most specific first, with what to send instead. */
function malformed(text: string): string {
  if (text === '') return 'is an empty string; send the amount as digits such as 24.50';
  if (/\s/.test(text)) return 'contains whitespace; send the digits alone, such as 24.50';
  if (text.startsWith('-')) return 'is negative; an amount must be zero or more';
  if (text.startsWith('+')) return "has a leading '+'; send the digits alone, such as 24.50";
  if (/^(?:nan|infinity)$/i.test(text)) return 'is not a finite number; send the amount as digits such as 24.50';
  if (/^0[xob]/i.test(text)) return 'is not in decimal; send base-10 digits such as 24.50';
  if (/^[0-9.]+[eE]/.test(text)) return 'uses exponent notation; write all the digits out (1000, not 1e3)';
  if (text.startsWith('.')) return 'has no digit before the decimal point; write 0.5, not .5';
  if (/^[0-9]+\.$/.test(text)) return 'has no digit after the decimal point; write 5 or 5.00, not 5.';
  if (/^0[0-9]/.test(text)) return 'has leading zeros; write 7, not 007';
  return "is not a decimal number; send digits with an optional '.' and fraction, such as 24.50";
}

/**
 * The amount in a write's `field` ('body:…'), or 400 amount_invalid saying what to fix; `reader`
 * names the rule that reads it ("budget daily-usd", "the approval rule").
 */
export function writeAmount(json: unknown, field: string, scale: number, write: { method: string; path: string }, reader: string): number {
  const result = parseAmount(readRaw(json, field.slice('body:'.length)), scale);
  if (result.ok) return result.minor;
  const places = scale === 0 ? 'as a whole number' : `with at most ${scale} decimal places`;
  throw new WriteguardError(
    'amount_invalid',
    `this ${write.method} ${write.path} ${field} ${result.reason}. Nothing was sent: fix ${field} and send the write again ` +
      `(${reader} reads it ${places}).`,
  );
}
