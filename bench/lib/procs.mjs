// Child processes of the bench: spawned pinned to a core, tracked, and always stopped by PID.
// Also the /proc readers (CPU ticks, RSS) the bench measures the system under test with.
import { spawn, spawnSync } from 'node:child_process';
import { openSync, readFileSync, readdirSync, closeSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Every process this bench started and has not yet seen exit. */
const live = new Map();

/** The load generator gets core 0, the servers core 1 — when there are two cores and taskset. */
export const pinning = (() => {
  const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
  const cores = Number(spawnSync('nproc', [], { encoding: 'utf8' }).stdout.trim()) || 1;
  return { enabled: hasTaskset && cores >= 2, hasTaskset, cores };
})();

export const CORE_LOAD = 0;
export const CORE_SUT = 1;

/**
 * Starts `cmd args` pinned to `core` (taskset execs the command, so the PID is the command's own).
 * stdout/stderr go to files (or 'ignore'): a full pipe nobody reads would stall a server under load.
 */
export function start(name, cmd, args, { core = null, env, stdout = 'ignore', stderr = 'ignore', stdin = 'ignore', cwd } = {}) {
  // 'ignore' | 'pipe' | 'inherit' as spawn takes them; anything else is a file to append to.
  const fd = (where) => (['ignore', 'pipe', 'inherit'].includes(where) ? where : openSync(where, 'a'));
  const out = fd(stdout);
  const err = fd(stderr);
  const [file, argv] = core !== null && pinning.enabled ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, { env: { ...process.env, ...env }, stdio: [stdin, out, err], cwd });
  for (const f of [out, err]) if (typeof f === 'number') closeSync(f);
  const entry = { name, child, pid: child.pid, exited: false };
  live.set(child.pid, entry);
  entry.exit = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      entry.exited = true;
      live.delete(child.pid);
      resolve({ code, signal });
    });
    child.once('error', (error) => {
      entry.exited = true;
      live.delete(child.pid);
      resolve({ code: null, signal: null, error });
    });
  });
  return entry;
}

/** SIGTERM, then SIGKILL if it has not gone after `graceMs`. Resolves when it has exited. */
export async function stop(entry, { signal = 'SIGTERM', graceMs = 5000 } = {}) {
  if (entry === undefined || entry === null || entry.exited) return;
  try {
    process.kill(entry.pid, signal);
  } catch {
    return;
  }
  const done = await Promise.race([entry.exit.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    try {
      process.kill(entry.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await entry.exit;
  }
}

/** Stops everything still running, newest first (clients before the servers they talk to). */
export async function stopAll() {
  const entries = [...live.values()].reverse();
  for (const e of entries) await stop(e, { graceMs: 3000 });
}

/** Synchronous last resort for process 'exit': no awaiting there, so SIGKILL whatever is left. */
export function killAllNow() {
  for (const e of live.values()) {
    try {
      process.kill(e.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** A port the kernel calls free right now (closed again before use: a tiny race we accept). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers `status` (default 200), or throws after `timeoutMs`. */
export async function waitForHttp(url, { status = 200, timeoutMs = 15000, entry } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (entry?.exited) throw new Error(`${entry.name} exited before ${url} answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === status) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms (${last})`);
}

/** Waits until something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForPort(port, { timeoutMs = 10000, entry } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (entry?.exited) throw new Error(`${entry.name} exited before listening on ${port}`);
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listened on port ${port} within ${timeoutMs} ms`);
}

/** Child PIDs of `pid` (nginx workers under their master), by scanning /proc. */
export function childrenOf(pid) {
  const kids = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) comes after "pid (comm) state"; comm may hold spaces, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) kids.push(Number(name));
    } catch {
      /* gone meanwhile */
    }
  }
  return kids;
}

export const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime+stime of a process (all its threads) in clock ticks; 0 when it is gone. */
export function cpuTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm)": state=f[0], ... utime=f[11], stime=f[12] (fields 14 and 15 of proc(5)).
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** VmRSS in MiB; 0 when it is gone. */
export function rssMiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) / 1024;
  } catch {
    return 0;
  }
}

export const sumTicks = (pids) => pids.reduce((t, p) => t + cpuTicks(p), 0);

/**
 * Machine-wide CPU ticks from /proc/stat: `task` (user+nice+system, what processes are charged)
 * and `steal` (taken by the hypervisor). Compared with `ownTicks` it tells how busy the machine
 * was with work that is not the bench's — other sessions' test suites, say.
 */
export function machineTicks() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  return { task: f[0] + f[1] + f[2], steal: f[7] ?? 0 };
}

/** Ticks of the bench itself, every process it started, and their children (nginx's worker). */
export function ownTicks() {
  let t = cpuTicks(process.pid);
  for (const e of live.values()) t += sumTicks([e.pid, ...childrenOf(e.pid)]);
  return t;
}
export const sumRss = (pids) => pids.reduce((t, p) => t + rssMiB(p), 0);
