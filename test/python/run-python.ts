// Runs the Python client scripts of this folder under Debian's /usr/bin/python3 (the interpreter
// python3-requests, -httpx, -stripe and -tenacity install into; a pyenv `python3` on PATH lacks
// them). Each script prints one JSON line on stdout: its report.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';
const MODULES = ['requests', 'httpx', 'stripe', 'tenacity'];
const PACKAGES = MODULES.map((m) => `python3-${m}`).join(' ');
const SCRIPTS = fileURLToPath(new URL('.', import.meta.url));
/** A script that has not exited by then is killed: every client in it is bounded well below this. */
const RUN_TIMEOUT_MS = 30_000;
// A clean environment: requests and httpx would honour HTTP(S)_PROXY from the runner's, even for 127.0.0.1.
const ENV = { PATH: '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1', LANG: 'C.UTF-8' };

let missing: string | null | undefined;

/** Why the Python clients cannot run here, or null when they can (asked once). */
export function pythonClientsMissing(): string | null {
  missing ??= probeModules();
  return missing;
}

function probeModules(): string | null {
  const probe = spawnSync(PYTHON, ['-c', `import ${MODULES.join(', ')}`], { encoding: 'utf8', timeout: 10_000, env: ENV });
  if (probe.error === undefined && probe.status === 0) return null;
  const why = probe.error?.message ?? probe.stderr.trim().split('\n').at(-1);
  return `${PYTHON} cannot import ${MODULES.join(', ')} (${why}): apt-get install ${PACKAGES} (bash .ci/run installs them)`;
}

export interface PythonRun<T> {
  /** The process, for writing to its stdin. */
  child: ChildProcessWithoutNullStreams;
  /** Its one JSON line; rejects, with its stderr, when it fails, prints no JSON or is killed. */
  report: Promise<T>;
}

/**
 * Runs `script` for test `t`, and kills it when the test ends (a failed assertion leaves no process behind).
 * Throws when the clients are not installed: a failure, not a skip, since CI installs them.
 */
export function runPython<T>(t: TestContext, script: string, args: string[]): PythonRun<T> {
  const why = pythonClientsMissing();
  if (why !== null) throw new Error(why);
  const child = spawn(PYTHON, [`${SCRIPTS}${script}`, ...args], { env: ENV, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const report = new Promise<T>((resolve, reject) => {
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, RUN_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${PYTHON} ${script}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const how = killed ? `was killed after ${RUN_TIMEOUT_MS} ms` : `exited with ${code ?? signal}`;
      if (code !== 0) return reject(new Error(`${script} ${how}: ${stderr}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as T);
      } catch {
        reject(new Error(`${script} printed no JSON report: ${stdout}${stderr}`));
      }
    });
  });
  report.catch(() => undefined); // awaited by the test; unawaited only when the test already failed
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, report };
}

/** One answer as the Python client saw it (test/python/wg_report.py). */
export interface SeenAnswer {
  status: number;
  code: string | null;
  replayed: string | null;
  should_retry: string | null;
  retry_after: string | null;
  wg_attempts: string | null;
  key: string | null;
}

/** A request that got no answer: the exception's class. */
export interface SeenFailure {
  error: string;
}
