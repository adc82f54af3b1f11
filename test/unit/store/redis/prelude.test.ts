// Each script carries only the Lua helpers it calls: every call has its definition, ahead of it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APPROVAL, REFUSAL } from '../../../../src/store/redis/leash-scripts.js';
import { withPrelude } from '../../../../src/store/redis/prelude.js';
import { SCRIPTS } from '../../../../src/store/redis/scripts.js';

const defined = (script: string): string[] => [...script.matchAll(/^local function (\w+)\(/gm)].map((m) => m[1]!);

test('a script gets the helpers it calls and those they call, in definition order, and no others', () => {
  assert.deepEqual(defined(withPrelude('return fmt(1)')), ['fmt']);
  // completed() calls fmt() (its fields are written directly, not through save()).
  assert.deepEqual(defined(withPrelude("local r = read('state')\ncompleted(r, 1, '201', false, nil, '1', '1')")), [
    'fmt',
    'read',
    'completed',
  ]);
  // settle_leash() calls fate_of() and leash_of().
  assert.deepEqual(defined(withPrelude('settle_leash(r, nil, nil)')), ['leash_of', 'fate_of', 'settle_leash']);
  assert.equal(withPrelude("return redis.call('GET', KEYS[1])"), "return redis.call('GET', KEYS[1])");
});

test('every helper a script calls is defined before the script body, and the small steps carry few', () => {
  const helpers = new Set(defined(SCRIPTS.wgBegin + SCRIPTS.wgFinish + SCRIPTS.wgResolve + APPROVAL));
  assert.ok(helpers.size >= 12, `the helpers: ${[...helpers].join(', ')}`);
  for (const [name, script] of Object.entries({ ...SCRIPTS, REFUSAL })) {
    const own = defined(script);
    for (const helper of helpers) {
      const call = new RegExp(`\\b${helper}\\(`).exec(script.replace(new RegExp(`^local function ${helper}\\(`, 'm'), ''));
      if (call === null) continue;
      assert.ok(own.includes(helper), `${name} calls ${helper} without defining it`);
      assert.ok(script.indexOf(`local function ${helper}(`) < call.index, `${name} defines ${helper} after a call`);
    }
  }
  // markSent reads into locals and writes one HSET: the clock, fmt and the fence check are all it carries.
  assert.deepEqual(defined(SCRIPTS.wgMarkSent), ['now_ms', 'fmt', 'fenced']);
  assert.deepEqual(defined(SCRIPTS.wgGet), []);
});
