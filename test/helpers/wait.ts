// Waiting in tests: poll a condition until it holds, bounded in time and in the number of polls.
// The one copy of this loop; a test that waits for something uses `until` (a boolean to assert on, or
// to ignore when the wait is only a courtesy) or `eventually` (fails the test when it never holds).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';

export type Check = () => boolean | Promise<boolean>;

export interface WaitOptions {
  /** How long to keep polling; the check runs once more at the end. */
  timeoutMs: number;
  /** The pause between polls (default 50 ms). */
  intervalMs?: number;
}

const DEFAULT_INTERVAL_MS = 50;
/** However short the interval, a wait never polls more than this. */
const MAX_POLLS = 10_000;

/** Polls `check` until it holds (true) or `timeoutMs` has passed (false). An error thrown by `check` ends the wait. */
export async function until(check: Check, { timeoutMs, intervalMs = DEFAULT_INTERVAL_MS }: WaitOptions): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let poll = 0; poll < MAX_POLLS; poll++) {
    if (await check()) return true;
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await sleep(Math.min(intervalMs, left));
  }
  return false;
}

/** Asserts that `check` comes to hold within `timeoutMs` (polled as `until` polls). */
export async function eventually(
  check: Check,
  timeoutMs: number,
  { what = 'the condition', intervalMs }: { what?: string; intervalMs?: number } = {},
): Promise<void> {
  const held = await until(check, { timeoutMs, ...(intervalMs === undefined ? {} : { intervalMs }) });
  assert.ok(held, `timed out after ${timeoutMs} ms waiting for ${what}`);
}
