// The scenarios, in the order they run (9, the log checks, runs last over all of them).
import type { Scenario } from '../lib/scenario.js';
import { s01 } from './s01-random-workload.js';
import { s02 } from './s02-sigkill.js';
import { s03 } from './s03-sigstop.js';
import { s04 } from './s04-redis-restart.js';
import { s05 } from './s05-redis-cluster.js';
import { s06 } from './s06-redis-proxy-faults.js';
import { s07 } from './s07-sigterm.js';
import { s08 } from './s08-hostile-input.js';
import { s10 } from './s10-soak.js';
import { s11 } from './s11-store-loss.js';

export const scenarios: Scenario[] = [s01, s02, s03, s04, s05, s06, s07, s08, s10, s11];
