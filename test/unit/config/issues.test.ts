// One formatter for every zod failure: config files, operator config from the environment, dead letter resolutions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { resolutionSchema } from '../../../src/admin/dead-letters.js';
import { formatIssues } from '../../../src/config/issues.js';
import { ConfigError, loadOperatorConfig } from '../../../src/config/load.js';

const issuesOf = (schema: z.ZodType, value: unknown) => {
  const result = schema.safeParse(value);
  assert.ok(!result.success);
  return result.error.issues;
};

test('paths: indexes in brackets, keys joined by dots, the whole value as (root) or as named', () => {
  const schema = z.strictObject({ upstreams: z.array(z.strictObject({ target: z.url({ error: 'must be a URL' }) })) });
  assert.deepEqual(formatIssues(issuesOf(schema, { upstreams: [{ target: 'x' }] })), ['upstreams[0].target: must be a URL']);
  assert.deepEqual(formatIssues(issuesOf(z.string({ error: 'must be text' }), 1)), ['(root): must be text']);
  assert.deepEqual(formatIssues(issuesOf(z.string({ error: 'must be text' }), 1), { root: '(body)' }), ['(body): must be text']);
  assert.deepEqual(formatIssues(issuesOf(schema, { upstreams: [{ target: 'x' }] }), { under: ['config', 2] }), [
    'config[2].upstreams[0].target: must be a URL',
  ]);
});

test('a resolution is worded the same way, nested fields by path', () => {
  const problems = formatIssues(issuesOf(resolutionSchema, { outcome: 'executed', response: { status: 99 } }), { root: '(resolution)' });
  assert.equal(problems.length, 1, problems.join('\n'));
  assert.match(problems[0]!, /^response\.status: /);
});

test('operator config from the environment names the store section', () => {
  assert.throws(
    () => loadOperatorConfig({ env: { REDIS_URL: 'http://127.0.0.1:6379' } }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.deepEqual(err.problems, ['store.url: must be a redis:// or rediss:// URL']);
      return true;
    },
  );
});
