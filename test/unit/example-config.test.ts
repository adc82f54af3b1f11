// The example config documents every field, validates, and its editor schema is the generated one.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { configJsonSchema } from '../../src/config/json-schema.js';
import { loadConfig } from '../../src/config/load.js';

const example = new URL('../../config/writeguard.example.yaml', import.meta.url);

/** Every object path whose keys differ between what the file spells out and what the schema produces. */
function missingFields(raw: unknown, parsed: unknown, path = ''): string[] {
  if (parsed === null || typeof parsed !== 'object' || raw === null || typeof raw !== 'object') return [];
  if (Array.isArray(parsed)) return parsed.flatMap((item, i) => missingFields((raw as unknown[])[i], item, `${path}[${i}]`));
  return Object.keys(parsed).flatMap((k) => {
    if (!(k in (raw as object))) return [`${path}.${k}`];
    return missingFields((raw as Record<string, unknown>)[k], (parsed as Record<string, unknown>)[k], `${path}.${k}`);
  });
}

test('config/writeguard.example.yaml is valid and spells out every field of the schema', () => {
  const config = loadConfig({ file: example.pathname, env: {} });
  const raw = parse(readFileSync(example, 'utf8')) as unknown;
  // Route overrides are partial by design; everything else must be written out.
  const missing = missingFields(raw, config).filter((p) => !/^\.upstreams\[\d+\]\.routes\[\d+\]\./.test(p));
  assert.deepEqual(missing, []);
});

test('config/writeguard.schema.json is the schema generated from the zod schema', () => {
  const committed = JSON.parse(readFileSync(new URL('../../config/writeguard.schema.json', import.meta.url), 'utf8')) as unknown;
  assert.deepEqual(committed, configJsonSchema());
  assert.match(readFileSync(example, 'utf8'), /^# yaml-language-server: \$schema=\.\/writeguard\.schema\.json/);
});
