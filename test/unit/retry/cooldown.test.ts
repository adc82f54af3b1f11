// The cooldown cache: a cooldown holds its agent and upstream until it ends; expired entries do not
// pile up, whoever announced them (agent ids come from a header, and the fleet announces its own).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Cooldowns } from '../../../src/retry/cooldown.js';

test('a cooldown holds its agent and upstream only, until it ends; a longer one stands', () => {
  let now = 1_000;
  const cooldowns = new Cooldowns(() => now);
  cooldowns.note('agent-a', 'pay', 2_000);
  cooldowns.note('agent-a', 'pay', 500);
  assert.equal(cooldowns.remainingMs('agent-a', 'pay'), 2_000);
  assert.equal(cooldowns.remainingMs('agent-a', 'other'), 0);
  assert.equal(cooldowns.remainingMs('agent-b', 'pay'), 0);
  now += 1_500;
  assert.equal(cooldowns.remainingMs('agent-a', 'pay'), 500);
  now += 500;
  assert.equal(cooldowns.remainingMs('agent-a', 'pay'), 0);
  assert.equal(cooldowns.size, 0, 'an expired entry goes when it is checked');
});

test('expired cooldowns of agents never seen again are dropped: the cache holds the live ones and a bounded rest', () => {
  let now = 0;
  const cooldowns = new Cooldowns(() => now);
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 3_000; i++) cooldowns.note(`agent-${round}-${i}`, 'pay', 1_000);
    now += 2_000;
  }
  // 30,000 agents noted, each once and never checked: only the last round's are live.
  cooldowns.note('late', 'pay', 1_000);
  assert.ok(cooldowns.size <= 2 * 3_000 + 1, `${cooldowns.size} entries held`);
  assert.equal(cooldowns.remainingMs('agent-9-0', 'pay'), 0);
  assert.equal(cooldowns.remainingMs('late', 'pay'), 1_000);
});
