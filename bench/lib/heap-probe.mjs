// Loaded into the soak's writeguard with --import (bench only): on SIGWINCH — a signal neither Node
// nor close-with-grace acts on — two full garbage collections, then one JSON line of what stayed alive
// appended to $WG_HEAP_PROBE. RSS under load is a GC sawtooth plus whatever the heap keeps reserved;
// the heap after a full collection is what the process actually retains, the measure of a leak.
import { appendFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');
const file = process.env.WG_HEAP_PROBE;
const MiB = 1024 * 1024;

process.on('SIGWINCH', () => {
  gc();
  gc();
  const m = process.memoryUsage();
  appendFileSync(file, `${JSON.stringify({ heapUsedMiB: m.heapUsed / MiB, externalMiB: m.external / MiB })}\n`);
});
