// The response line's own writer against pino's: the same bytes for any flat fields, the same level
// gate, and pino itself for a logger infoLine does not know.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pino } from 'pino';
import { createLogger, infoLine } from '../../../src/observe/logger.js';

function capture(level = 'info') {
  const lines: string[] = [];
  const log = createLogger({ level, destination: { write: (line: string) => void lines.push(line) } });
  return { log, lines };
}

/** Two lines of different moments: equal once their times are. */
const timeless = (line: string): string => line.replace(/^(\{"level":[^,]+,"time":)\d+,/, '$10,');

// Strings of whole code points: a lone surrogate is the one documented difference (pino writes it raw).
const flat = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'grapheme-ascii' }),
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
);
const fields = fc.dictionary(fc.stringMatching(/^[a-z_][a-z0-9_]{0,15}$/), flat, { maxKeys: 20 });

test('infoLine writes the bytes log.info writes, for any flat fields', () => {
  fc.assert(
    fc.property(fields, fc.string({ unit: 'binary', maxLength: 20 }), (f, msg) => {
      const { log, lines } = capture();
      infoLine(log, f, msg);
      log.info(f, msg);
      assert.equal(lines.length, 2);
      assert.equal(timeless(lines[0]!), timeless(lines[1]!));
    }),
    { numRuns: 500 },
  );
});

test('a response line: one JSON line, fields in order, undefined left out, non-finite numbers as null', () => {
  const { log, lines } = capture();
  infoLine(log, { request_id: 'req_"1"\n', code: null, status: 201, gone: undefined, d: NaN, ok: true }, 'response');
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith('}\n') && lines[0]!.indexOf('\n') === lines[0]!.length - 1);
  const parsed = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed), ['level', 'time', 'service', 'request_id', 'code', 'status', 'd', 'ok', 'msg']);
  assert.deepEqual(
    { ...parsed, time: 0 },
    { level: 'info', time: 0, service: 'writeguard', request_id: 'req_"1"\n', code: null, status: 201, d: null, ok: true, msg: 'response' },
  );
});

test('infoLine writes nothing when info is below the level', () => {
  const { log, lines } = capture('warn');
  infoLine(log, { a: 1 }, 'response');
  assert.deepEqual(lines, []);
});

test('a logger not made by createLogger gets log.info, its own format included', () => {
  const lines: string[] = [];
  const other = pino({ base: { app: 'x' } }, { write: (line: string) => void lines.push(line) });
  infoLine(other, { a: 'b' }, 'response');
  other.info({ a: 'b' }, 'response');
  assert.equal(lines.length, 2);
  assert.equal(timeless(lines[0]!), timeless(lines[1]!));
  assert.match(lines[0]!, /^\{"level":30,"time":\d+,"app":"x","a":"b","msg":"response"\}\n$/);
});
