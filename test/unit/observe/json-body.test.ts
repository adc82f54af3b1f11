// A JSON body read without losing digits: parsed, read by path, printed canonically. Pure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isLosslessNumber, LosslessNumber, parse } from 'lossless-json';
import { canonicalValue, JSON_BODY_MAX_BYTES, parseLossless, readRaw, readText } from '../../../src/observe/json-body.js';

const body = (text: string): Buffer => Buffer.from(text, 'utf8');

test('canonicalValue sorts members at every depth and prints numbers exactly as written', () => {
  assert.equal(canonicalValue(parse('{"b":1,"a":{"d":[2,{"z":0,"y":1}],"c":"x"}}')), '{"a":{"c":"x","d":[2,{"y":1,"z":0}]},"b":1}');
  assert.equal(canonicalValue(parse('24.50')), '24.50');
  assert.equal(canonicalValue(parse('"24.50"')), '"24.50"');
  assert.equal(canonicalValue(parse('1.000000000000000000001')), '1.000000000000000000001');
  assert.equal(canonicalValue(parse('1e3')), '1e3');
  assert.equal(canonicalValue(null), 'null');
  assert.equal(canonicalValue(true), 'true');
  assert.equal(canonicalValue('a"\u2028'), JSON.stringify('a"\u2028'));
  assert.equal(canonicalValue(new LosslessNumber('7')), '7');
});

test('parseLossless keeps number text, and gives undefined for what is not one JSON document', () => {
  const json = parseLossless(body('{"amount":24.50,"n":12345678901234567890123}')) as Record<string, unknown>;
  assert.ok(isLosslessNumber(json.amount));
  assert.equal((json.amount as LosslessNumber).value, '24.50');
  assert.equal((json.n as LosslessNumber).value, '12345678901234567890123');
  assert.equal(parseLossless(body('[1]')) instanceof Array, true);
  assert.equal(parseLossless(body('"s"')), 's');
  for (const text of ['', 'not json', '{"a":1', '{"a":1,"a":2}', '{} {}']) assert.equal(parseLossless(body(text)), undefined, text);
  assert.equal(parseLossless(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), undefined, 'invalid UTF-8');
  assert.equal(parseLossless(body('['.repeat(200_000) + ']'.repeat(200_000))), undefined, 'deeper than the stack');
  const big = `{"a":"${'x'.repeat(JSON_BODY_MAX_BYTES)}"}`;
  assert.equal(parseLossless(body(big)), undefined, 'over the bound');
});

test('readRaw follows a dotted path through plain objects only, own members only', () => {
  const json = parse('{"a":{"b":{"c":7}},"arr":[{"x":1}],"n":null,"__proto__":{"p":1}}');
  assert.equal((readRaw(json, 'a.b.c') as LosslessNumber).value, '7');
  assert.deepEqual(Object.keys(readRaw(json, 'a') as object), ['b']);
  assert.equal(readRaw(json, 'n'), null);
  assert.equal(readRaw(json, 'a.x'), undefined);
  assert.equal(readRaw(json, 'a.b.c.d'), undefined);
  assert.equal(readRaw(json, 'arr.0'), undefined, 'arrays are not walked');
  assert.equal(readRaw(json, 'n.x'), undefined);
  assert.equal(readRaw(json, 'constructor'), undefined);
  assert.equal(readRaw(json, 'a.toString'), undefined);
  assert.equal((readRaw(json, '__proto__.p') as LosslessNumber).value, '1', 'a member named __proto__ is a member like any other');
  assert.equal(readRaw(undefined, 'a'), undefined);
  assert.equal(readRaw('text', 'length'), undefined);
});

test('readText: strings as they are, numbers as written, anything else missing', () => {
  const json = parse('{"s":"usd","e":"","n":7,"d":24.50,"b":true,"z":null,"o":{},"a":[]}');
  assert.equal(readText(json, 's'), 'usd');
  assert.equal(readText(json, 'e'), '');
  assert.equal(readText(json, 'n'), '7');
  assert.equal(readText(json, 'd'), '24.50');
  for (const k of ['b', 'z', 'o', 'a', 'missing']) assert.equal(readText(json, k), undefined, k);
});
