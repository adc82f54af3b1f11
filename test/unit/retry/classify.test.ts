import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classifyWriteStatus } from '../../../src/retry/classify.js';

const defaults = { notExecutedStatuses: [429], upstreamHonorsKey: false };

test('answers that prove the write ran or was refused for good are definitive', () => {
  for (const s of [200, 201, 202, 204, 301, 302, 400, 402, 403, 404, 409, 422])
    assert.equal(classifyWriteStatus(s, defaults), 'definitive', String(s));
});

test('429 by default proves nothing ran; the list is configurable', () => {
  assert.equal(classifyWriteStatus(429, defaults), 'not_executed');
  assert.equal(classifyWriteStatus(503, { ...defaults, notExecutedStatuses: [429, 503] }), 'not_executed');
  assert.equal(classifyWriteStatus(429, { ...defaults, notExecutedStatuses: [] }), 'ambiguous');
});

test('408, 425 and every 5xx (503 included) are ambiguous', () => {
  for (const s of [408, 425, 500, 502, 503, 504]) assert.equal(classifyWriteStatus(s, defaults), 'ambiguous', String(s));
});

test('with an upstream that dedupes on the key, its 409 "in use" is ambiguous too', () => {
  assert.equal(classifyWriteStatus(409, { ...defaults, upstreamHonorsKey: true }), 'ambiguous');
});

test('401 proves nothing ran (the request was not authenticated), whatever the list says', () => {
  assert.equal(classifyWriteStatus(401, defaults), 'not_executed');
  assert.equal(classifyWriteStatus(401, { ...defaults, notExecutedStatuses: [] }), 'not_executed');
});
