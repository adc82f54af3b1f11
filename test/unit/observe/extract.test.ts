// Finding the upstream's request id and error code in an answer, pure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractAnswer, parseJsonBody, readField, requestIdFromHeaders } from '../../../src/observe/extract.js';

const rules = {
  requestIdHeaders: ['request-id', 'x-request-id'],
  requestIdFields: ['request_id', 'error.request_id'],
  codeFields: ['code', 'error.code', 'error.type'],
};
const json = { 'content-type': 'application/json; charset=utf-8' };
const body = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

test('readField follows dotted paths; only non-empty strings and finite numbers count', () => {
  const doc = { error: { code: 'card_declined', n: 42, empty: '', nested: { x: 'y' }, list: ['a'], t: true, nil: null } };
  assert.equal(readField(doc, 'error.code'), 'card_declined');
  assert.equal(readField(doc, 'error.n'), '42');
  assert.equal(readField(doc, 'error.nested.x'), 'y');
  for (const path of ['error.empty', 'error.nested', 'error.list', 'error.t', 'error.nil', 'error.missing', 'nope.x', 'error.list.0']) {
    assert.equal(readField(doc, path), null, path);
  }
  assert.equal(readField('text', 'a'), null);
  assert.equal(readField(null, 'a'), null);
  assert.equal(readField([{ a: 1 }], 'a'), null);
});

test('requestIdFromHeaders takes the first configured header that is set', () => {
  assert.equal(requestIdFromHeaders({ 'x-request-id': 'x1', 'request-id': 'r1' }, rules), 'r1');
  assert.equal(requestIdFromHeaders({ 'x-request-id': 'x1' }, rules), 'x1');
  assert.equal(requestIdFromHeaders({ 'request-id': '', 'x-request-id': 'x1' }, rules), 'x1');
  assert.equal(requestIdFromHeaders({ 'request-id': ['r1', 'r2'] }, rules), 'r1');
  assert.equal(requestIdFromHeaders({ 'other-id': 'o' }, rules), null);
});

test('parseJsonBody parses JSON (and +json) bodies only, never throws', () => {
  assert.deepEqual(parseJsonBody(json, body({ a: 1 })), { a: 1 });
  assert.deepEqual(parseJsonBody({ 'content-type': 'application/problem+json' }, body({ a: 1 })), { a: 1 });
  assert.equal(parseJsonBody({ 'content-type': 'text/plain' }, body({ a: 1 })), undefined);
  assert.equal(parseJsonBody({}, body({ a: 1 })), undefined);
  assert.equal(parseJsonBody(json, Buffer.from('{not json')), undefined);
  assert.equal(parseJsonBody(json, Buffer.alloc(0)), undefined);
  assert.equal(parseJsonBody(json, null), undefined);
});

test('a success: the request id from a header, no code even when the resource has a `code` field', () => {
  assert.deepEqual(extractAnswer(200, { ...json, 'request-id': 'req_a' }, body({ id: 'ch_1', code: 'promo10' }), rules), {
    requestId: 'req_a',
    code: null,
    inHeader: true,
  });
  assert.deepEqual(extractAnswer(201, json, body({ request_id: 'req_body' }), rules), {
    requestId: 'req_body',
    code: null,
    inHeader: false,
  });
});

test('an error: the code and request id from the body fields, in configured order', () => {
  const declined = body({ error: { type: 'card_error', code: 'card_declined', request_id: 'req_b' } });
  assert.deepEqual(extractAnswer(400, json, declined, rules), { requestId: 'req_b', code: 'card_declined', inHeader: false });
  assert.deepEqual(extractAnswer(402, json, body({ error: { type: 'card_error' } }), rules), {
    requestId: null,
    code: 'card_error',
    inHeader: false,
  });
  assert.deepEqual(extractAnswer(409, json, body({ code: 'top', error: { code: 'inner' } }), rules), {
    requestId: null,
    code: 'top',
    inHeader: false,
  });
  assert.deepEqual(extractAnswer(500, json, body({ code: 1001 }), rules), { requestId: null, code: '1001', inHeader: false });
});

test("a header request id wins over the body's", () => {
  const b = body({ error: { code: 'x', request_id: 'from_body' } });
  assert.deepEqual(extractAnswer(400, { ...json, 'x-request-id': 'from_header' }, b, rules), {
    requestId: 'from_header',
    code: 'x',
    inHeader: true,
  });
});

test('a redirect or other non-2xx counts as an answer whose code may be read', () => {
  assert.deepEqual(extractAnswer(302, { location: '/x' }, Buffer.alloc(0), rules), { requestId: null, code: null, inHeader: false });
  assert.deepEqual(extractAnswer(302, json, body({ code: 'moved' }), rules), { requestId: null, code: 'moved', inHeader: false });
});

test('non-JSON or unparsable error bodies yield nothing', () => {
  assert.deepEqual(extractAnswer(500, { 'content-type': 'text/html' }, Buffer.from('<h1>{"code":"x"}</h1>'), rules), {
    requestId: null,
    code: null,
    inHeader: false,
  });
  assert.deepEqual(extractAnswer(500, json, Buffer.from('{"code":'), rules), { requestId: null, code: null, inHeader: false });
  assert.deepEqual(extractAnswer(503, {}, null, rules), { requestId: null, code: null, inHeader: false });
});

test('custom field and header names are honoured', () => {
  const custom = { requestIdHeaders: ['x-trace'], requestIdFields: ['meta.trace'], codeFields: ['errorCode'] };
  assert.deepEqual(extractAnswer(422, json, body({ errorCode: 'E_POINTS', meta: { trace: 't1' } }), custom), {
    requestId: 't1',
    code: 'E_POINTS',
    inHeader: false,
  });
  assert.deepEqual(extractAnswer(422, { ...json, 'x-trace': 'h1' }, body({ code: 'ignored' }), custom), {
    requestId: 'h1',
    code: null,
    inHeader: true,
  });
});
