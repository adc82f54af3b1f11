// The generated JSON Schema is an editor's help: every field carries its description.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configJsonSchema } from '../../../src/config/json-schema.js';

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => v !== null && typeof v === 'object' && !Array.isArray(v);

interface Property {
  path: string;
  schema: Node;
  leaf: boolean;
}

/** Every property of every object in the schema (array items, nullable branches and definitions included). */
function properties(node: unknown, path = ''): Property[] {
  if (Array.isArray(node)) return node.flatMap((n) => properties(n, path));
  if (!isNode(node)) return [];
  const found: Property[] = [];
  if (isNode(node.properties)) {
    for (const [name, schema] of Object.entries(node.properties)) {
      if (!isNode(schema)) continue;
      const nested = properties(schema, `${path}.${name}`);
      found.push({ path: `${path}.${name}`, schema, leaf: nested.length === 0 }, ...nested);
    }
  }
  for (const key of ['items', 'anyOf', 'oneOf', 'allOf', 'additionalProperties'] as const)
    found.push(...properties(node[key], key === 'items' ? `${path}[]` : path));
  for (const key of ['$defs', 'definitions'] as const) {
    if (isNode(node[key])) for (const [name, def] of Object.entries(node[key])) found.push(...properties(def, `#${name}`));
  }
  return found;
}

test('every property of the generated JSON Schema has a description, leaves and sections alike', () => {
  const all = properties(configJsonSchema());
  const leaves = all.filter((p) => p.leaf);
  // Sanity: the walk reaches the depths (store.sentinel.nodes[].port, upstreams[].routes[].reconcile.path).
  assert.ok(leaves.length > 80, `only ${leaves.length} leaves found`);
  for (const deep of [
    '.store.sentinel.nodes[].port',
    '.upstreams[].routes[].reconcile.path',
    '.upstreams[].idempotency.leaseMs',
    '.upstreams[].routes[].idempotency.missing',
  ]) {
    assert.ok(
      leaves.some((p) => p.path === deep),
      `${deep} not reached`,
    );
  }
  const undescribed = all.filter((p) => typeof p.schema.description !== 'string' || p.schema.description.trim() === '').map((p) => p.path);
  assert.deepEqual(undescribed, []);
});

test('a field keeps its description next to its default (defaults and prefaults do not hide it)', () => {
  const schema = configJsonSchema() as { properties: Record<string, Node & { properties: Record<string, Node> }> };
  const { store, admin } = schema.properties;
  assert.deepEqual(store!.default, {});
  assert.match(String(store!.description), /idempotency records/);
  assert.equal(store!.properties.kind!.default, 'memory');
  assert.match(String(store!.properties.kind!.description), /shared by a fleet/);
  // A nullable field's description sits on the property, not inside one branch of its anyOf.
  assert.equal(admin!.properties.token!.default, null);
  assert.match(String(admin!.properties.token!.description), /Bearer token/);
});
