// Whether a Redis can be trusted to keep claims, judged from INFO (DESIGN §3.12), pure.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { judgeSafety, parseInfo } from '../../../../src/store/redis/safety.js';

const info = (fields: Record<string, string | number>): string =>
  ['# Memory', ...Object.entries(fields).map(([k, v]) => `${k}:${v}`), ''].join('\r\n');

test('INFO lines parse into fields; section headers and blanks are skipped', () => {
  const fields = parseInfo('# Memory\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n\r\n# Persistence\r\naof_enabled:1\r\n');
  assert.equal(fields.get('maxmemory_policy'), 'noeviction');
  assert.equal(fields.get('aof_enabled'), '1');
  assert.equal(fields.has('# Memory'), false);
});

test('a memory limit with an evicting policy is refused, on any master; noeviction or no limit is not', () => {
  for (const policy of ['volatile-lru', 'allkeys-lru', 'volatile-ttl', 'allkeys-random', 'volatile-lfu']) {
    const verdict = judgeSafety([{ info: info({ maxmemory: 4194304, maxmemory_policy: policy, aof_enabled: 1 }), save: '' }], false);
    assert.equal(verdict.refuse?.code, 'evicting', policy);
    assert.match(verdict.refuse!.detail, new RegExp(`maxmemory-policy ${policy}`));
  }
  assert.equal(
    judgeSafety([{ info: info({ maxmemory: 4194304, maxmemory_policy: 'noeviction', aof_enabled: 1 }), save: '' }], false).refuse,
    null,
  );
  assert.equal(
    judgeSafety([{ info: info({ maxmemory: 0, maxmemory_policy: 'allkeys-lru', aof_enabled: 1 }), save: '' }], false).refuse,
    null,
  );
  const cluster = [
    { info: info({ maxmemory: 0, maxmemory_policy: 'noeviction', aof_enabled: 1 }), save: '' },
    { info: info({ maxmemory: 1000, maxmemory_policy: 'volatile-lru', aof_enabled: 1 }), save: '' },
  ];
  assert.equal(judgeSafety(cluster, false).refuse?.code, 'evicting', 'one evicting master is enough');
});

test('allowEviction accepts an evicting store but still reports it', () => {
  const verdict = judgeSafety([{ info: info({ maxmemory: 1000, maxmemory_policy: 'volatile-lru', aof_enabled: 1 }), save: '' }], true);
  assert.equal(verdict.refuse, null);
  assert.match(verdict.evicts ?? '', /volatile-lru/);
});

test('persistence: AOF, RDB snapshots, nothing, or unknown when CONFIG is refused; the weakest master wins', () => {
  const node = (aof: number, save: string | null) => ({
    info: info({ maxmemory: 0, maxmemory_policy: 'noeviction', aof_enabled: aof }),
    save,
  });
  assert.equal(judgeSafety([node(1, null)], false).persistence, 'aof');
  assert.equal(judgeSafety([node(0, '3600 1 300 100')], false).persistence, 'rdb');
  assert.equal(judgeSafety([node(0, '')], false).persistence, 'none');
  assert.equal(judgeSafety([node(0, null)], false).persistence, 'unknown');
  assert.equal(judgeSafety([node(1, ''), node(0, '')], false).persistence, 'none');
  assert.equal(judgeSafety([node(1, ''), node(0, '60 1')], false).persistence, 'rdb');
});
