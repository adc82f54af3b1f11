// Processes the suite starts: writeguard (the built CLI) and redis-server, each stopped by PID — at the
// end of its scenario, and on any exit of the runner (normal, error, SIGINT/SIGTERM).
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { ConfigInput } from '../../../src/config/schema.js';
import { writeConfigFile } from '../../helpers/config-file.js';
import { CLI, launchWriteguard, type LogCapture, type WriteguardProcess } from '../../helpers/writeguard.js';

const live = new Set<ChildProcess>();

/** Kills one child by PID (SIGCONT first: a stopped process cannot die of SIGTERM). */
export function killPid(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, 'SIGCONT');
    process.kill(child.pid, signal);
  } catch {
    // already gone
  }
}

function killAll(): void {
  for (const child of live) killPid(child);
}
process.once('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

export interface WgProc {
  name: string;
  proc: WriteguardProcess;
  pid: number;
  logs: LogCapture;
  /** stdout as written (for the secrets check) */
  raw(): string;
  stderr(): string;
  listen: string[];
  admin: string;
  configPath: string;
  exited: Promise<number | null>;
  running(): boolean;
  /** The suite signalled it to stop (SIGTERM/SIGKILL): an exit is expected. */
  stopRequested: boolean;
  signal(sig: NodeJS.Signals): void;
  /** Graceful stop (SIGTERM), then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

/** Every writeguard process started by the suite, for the log checks (scenario 9). */
export const allWriteguards: Array<WgProc & { scenario: string; killed: boolean }> = [];

export async function startWg(scenario: string, name: string, config: ConfigInput, opts: { expectKill?: boolean } = {}): Promise<WgProc> {
  const file = writeConfigFile(config);
  const proc = launchWriteguard(['--config', file.path], { LOG_LEVEL: 'info' });
  live.add(proc.child);
  let raw = '';
  proc.child.stdout!.on('data', (d: Buffer) => (raw += d.toString('utf8')));
  void proc.exited.then(() => {
    live.delete(proc.child);
    file.remove();
  });
  let bound: { listen: string[]; admin: string };
  try {
    bound = await withTimeout(proc.ready, 20_000, `${name} did not start`);
  } catch (err) {
    killPid(proc.child);
    throw err;
  }
  const wg: WgProc = {
    name,
    proc,
    pid: proc.child.pid!,
    logs: proc.logs,
    raw: () => raw,
    stderr: proc.stderr,
    listen: bound.listen,
    admin: bound.admin,
    configPath: file.path,
    exited: proc.exited,
    running: () => proc.child.exitCode === null && proc.child.signalCode === null,
    stopRequested: false,
    signal: (sig) => {
      if (sig === 'SIGTERM' || sig === 'SIGKILL') wg.stopRequested = true;
      if (proc.child.pid !== undefined && proc.child.exitCode === null && proc.child.signalCode === null) process.kill(proc.child.pid, sig);
    },
    stop: async (graceMs = 10_000) => {
      if (!wg.running()) return proc.child.exitCode;
      wg.stopRequested = true;
      killPid(proc.child, 'SIGTERM');
      const timer = setTimeout(() => killPid(proc.child, 'SIGKILL'), graceMs);
      const code = await proc.exited;
      clearTimeout(timer);
      return code;
    },
  };
  allWriteguards.push(Object.assign(wg, { scenario, killed: opts.expectKill === true }));
  return wg;
}

/** Marks a process as killed on purpose (its in-flight requests have no response line). */
export function markKilled(wg: WgProc): void {
  const entry = allWriteguards.find((w) => w === wg);
  if (entry !== undefined) entry.killed = true;
}

/** Runs the real CLI (`writeguard store ack`, …) with a bounded time. */
export function runCli(args: string[], env: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Resident set size (kB) and open file descriptors of a process, from /proc. */
export function procStats(pid: number): { rssKb: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const fds = readdirSync(`/proc/${pid}/fd`).length;
  return { rssKb, fds };
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} (after ${ms} ms)`)), ms);
    }),
  ]);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it holds or `timeoutMs` passes; true if it held. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return true;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}

export async function ready(wg: WgProc): Promise<boolean> {
  try {
    const r = await fetch(`${wg.admin}/readyz`, { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.status === 200;
  } catch {
    return false;
  }
}

/**
 * Processes of a scenario that died on their own (not signalled by the suite), exited non-zero after
 * a SIGTERM, or logged an internal error (a 500, or an error-level line): each is a crash.
 */
export function crashesOf(scenario: string): string[] {
  const out: string[] = [];
  for (const wg of allWriteguards.filter((w) => w.scenario === scenario)) {
    const { exitCode, signalCode } = wg.proc.child;
    if (!wg.stopRequested && !wg.killed && (exitCode !== null || signalCode !== null))
      out.push(`${wg.name} exited by itself (${exitCode ?? signalCode}): ${wg.stderr().slice(0, 300)}`);
    else if (wg.stopRequested && !wg.killed && exitCode !== null && exitCode !== 0)
      out.push(`${wg.name} exited ${exitCode} after SIGTERM: ${wg.stderr().slice(0, 300)}`);
    else if (wg.stopRequested && !wg.killed && signalCode === 'SIGKILL') out.push(`${wg.name} did not exit after SIGTERM: killed`);
    const errors = wg.logs.lines.filter(
      (l) => l.level === 'error' || l.level === 'fatal' || l.code === 'internal_error' || l.status === 500,
    );
    if (errors.length > 0) out.push(`${wg.name}: ${errors.length} error lines, e.g. ${JSON.stringify(errors[0]).slice(0, 300)}`);
  }
  return out;
}
