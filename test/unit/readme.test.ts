// The README's error table is the code table: every code, with its status and retry strategy.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES } from '../../src/errors.js';

test('the README lists every error code with its status and retry strategy', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${code}\` |`));
    assert.ok(row, `README has no row for ${code}`);
    assert.match(row, new RegExp(`\\| ${spec.status}( / \\d{3})? \\| ${spec.retryStrategy} \\|`), row);
  }
});

test('the README gives the two set-up commands', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  assert.match(readme, /npm ci && npm start -- --upstream /);
  assert.match(readme, /npm ci && npm test && npm run test:faults/);
});
