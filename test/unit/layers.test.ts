// The one-way layer order (DESIGN §9): no file imports a file of a higher layer, no import cycle,
// and no source file grows past the size that says it holds two jobs. Read from the source itself.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
const LAYERS: Record<string, number> = {
  config: 0,
  errors: 0,
  types: 0,
  http: 1,
  retry: 2,
  store: 2,
  observe: 2,
  idempotency: 3,
  leash: 3,
  mcp: 3,
  proxy: 4,
  admin: 4,
  server: 5,
  index: 5,
  cli: 6,
};
const MAX_LINES = 350;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** `store/redis/steps.ts` → store; `server.ts` → server. */
function layerOf(file: string): number {
  const top = relative(SRC, file).split('/')[0]!.replace(/\.ts$/, '');
  const layer = LAYERS[top];
  assert.notEqual(layer, undefined, `${relative(SRC, file)} is in no layer of DESIGN §9`);
  return layer!;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gms)].map((m) =>
    resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')),
  );
}

const files = sourceFiles(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f)] as const));

test('no file imports a file of a higher layer', () => {
  const upward = [...graph].flatMap(([file, imports]) =>
    imports.filter((target) => layerOf(target) > layerOf(file)).map((target) => `${relative(SRC, file)} → ${relative(SRC, target)}`),
  );
  assert.deepEqual(upward, []);
});

test('no import cycle (no two files import each other, directly or around a loop)', () => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open')
      return void cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(SRC, f)).join(' → '));
    state.set(file, 'open');
    for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of files) visit(file, []);
  assert.deepEqual(cycles, []);
});

test(`no source file is over ${MAX_LINES} lines from its first import`, () => {
  const long = files.flatMap((file) => {
    const lines = readFileSync(file, 'utf8').split('\n');
    const first = lines.findIndex((l) => /^import\s/.test(l));
    const count = lines.length - Math.max(0, first);
    return count > MAX_LINES ? [`${relative(SRC, file)}: ${count}`] : [];
  });
  assert.deepEqual(long, []);
});
