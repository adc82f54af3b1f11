// `npm run demo`: a naive agent against a flaky payments API, first directly, then through writeguard.
//
// The fake payments upstream (loopback) executes every request it receives — it ignores
// Idempotency-Key, like the purchase endpoints of many points and payments APIs — and is flaky on a
// seeded schedule: some 429s (nothing executed), some 503s after executing (a load balancer giving up
// on a backend that ran), and one answer that lands after the agent's timeout. The agent retries every
// failure (timeouts and 5xx included), reusing one Idempotency-Key per logical payment: the retry
// policy most agents have. The same schedule runs twice, once agent → upstream, once agent →
// writeguard (the real CLI, memory store) → upstream, and a table compares what happened.
// Loopback only; every loop is bounded; everything started here is stopped here, by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, fetch } from 'undici';

const SEED = 20240611;
const PAYMENTS = 12;
const AGENT_TIMEOUT_MS = 1000;
/** The slow answer: the upstream executes at once and answers after the agent has given up. */
const SLOW_MS = 1300;
const MAX_ATTEMPTS = 6;
const RETRY_DELAY_MS = 200;
/** The whole demo stops by itself after this, whatever happens. */
const WATCHDOG_MS = 30_000;

type Fault = 'ok' | 'rate_limited' | 'fails_after_executing' | 'slow';

/** mulberry32: a small seeded PRNG, so every run draws the same schedule. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * For each payment, what its 1st, 2nd, … request to reach the upstream gets (then `ok`). A fixed mix,
 * shuffled by the seed: the same for both runs, whatever order the requests come in.
 */
function schedule(seed: number): Fault[][] {
  const mix: Fault[][] = [
    ['rate_limited'],
    ['rate_limited'],
    ['rate_limited', 'rate_limited'],
    ['fails_after_executing'],
    ['fails_after_executing'],
    ['rate_limited', 'fails_after_executing'],
    ['slow'],
  ];
  while (mix.length < PAYMENTS) mix.push([]);
  const random = prng(seed);
  for (let i = mix.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [mix[i], mix[j]] = [mix[j]!, mix[i]!];
  }
  return mix;
}

interface FakeUpstream {
  url: string;
  /** Executions per payment reference. */
  executions: Map<string, number>;
  answers: Record<Fault, number>;
  /** Resolves when every slow answer has been written (bounded). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

async function startFlakyPayments(plan: Fault[][]): Promise<FakeUpstream> {
  const arrivals = new Map<string, number>();
  const executions = new Map<string, number>();
  const answers: Record<Fault, number> = { ok: 0, rate_limited: 0, fails_after_executing: 0, slow: 0 };
  let pending = 0;
  let nextId = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { reference } = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { reference: string };
      const index = Number(reference.split('-')[1]);
      const nth = arrivals.get(reference) ?? 0;
      arrivals.set(reference, nth + 1);
      const fault = plan[index]?.[nth] ?? 'ok';
      answers[fault]++;
      const id = ++nextId;
      const json = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
        res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${id}`, ...headers });
        res.end(JSON.stringify(body));
      };
      if (fault === 'rate_limited') return json(429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'retry-after': '0' });
      // Everything else runs the payment.
      executions.set(reference, (executions.get(reference) ?? 0) + 1);
      if (fault === 'fails_after_executing') return json(503, { error: { code: 'service_unavailable', message: 'upstream gave up' } });
      const payment = { id: `pay_${id}`, reference, status: 'succeeded' };
      if (fault === 'slow') {
        pending++;
        setTimeout(() => {
          pending--;
          if (!res.destroyed) json(201, payment);
        }, SLOW_MS);
        return;
      }
      json(201, payment);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    executions,
    answers,
    async settled() {
      for (let i = 0; i < 100 && pending > 0; i++) await sleep(50);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface AgentResult {
  /** The agent got a 2xx: it believes the payment went through, once. */
  known: number;
  /** The last answer was writeguard's outcome_unknown: the agent knows that it does not know. */
  unknown: number;
  /** Gave up on anything else. */
  failed: number;
}

/** The naive agent: every failure is retried, up to MAX_ATTEMPTS, with the same key and body. */
async function runAgent(baseUrl: string): Promise<AgentResult> {
  const dispatcher = new Agent({ keepAliveTimeout: 1000 });
  const result: AgentResult = { known: 0, unknown: 0, failed: 0 };
  try {
    for (let i = 0; i < PAYMENTS; i++) {
      const key = `agent-7-payment-${i}`;
      const body = JSON.stringify({ reference: `order-${i}`, amount: 1000 + i * 25, currency: 'usd' });
      let last: keyof AgentResult = 'failed';
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        try {
          const res = await fetch(`${baseUrl}/v1/payments`, {
            method: 'POST',
            body,
            dispatcher,
            headers: { 'content-type': 'application/json', 'idempotency-key': key },
            signal: AbortSignal.timeout(AGENT_TIMEOUT_MS),
          });
          const text = await res.text();
          if (res.ok) {
            last = 'known';
            break;
          }
          const code = (JSON.parse(text) as { code?: string }).code;
          last = code === 'outcome_unknown' ? 'unknown' : 'failed';
        } catch {
          last = 'failed'; // a timeout or a reset: naive agents retry these too
        }
        if (attempt < MAX_ATTEMPTS) await sleep(RETRY_DELAY_MS);
      }
      result[last]++;
    }
  } finally {
    await dispatcher.close();
  }
  return result;
}

/** The real CLI, quick-start style: `writeguard --upstream URL`, memory store, free loopback ports. */
async function startWriteguard(upstream: string): Promise<{ url: string; child: ChildProcess }> {
  const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
  const child = spawn(process.execPath, [cli, '--upstream', upstream], {
    env: { PATH: process.env.PATH, WRITEGUARD_HOST: '127.0.0.1', WRITEGUARD_PORT: '0', WRITEGUARD_ADMIN_PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  // Its stdout (one JSON line per response) is read to the end, so the pipe never fills.
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('writeguard did not start within 10 s')), 10_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: { msg?: string; listen?: string[] } = {};
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        // not a log line
      }
      if (entry.msg === 'writeguard listening' && entry.listen?.[0] !== undefined) {
        clearTimeout(timer);
        resolve(entry.listen[0]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`writeguard exited (${code}) before listening: ${stderr}`));
    });
  });
  return { url, child };
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 5000);
  await exited;
  clearTimeout(timer);
}

interface Run {
  agent: AgentResult;
  executions: number;
  duplicates: number;
  answers: Record<Fault, number>;
}

function tally(agent: AgentResult, up: FakeUpstream): Run {
  const counts = [...up.executions.values()];
  return {
    agent,
    executions: counts.reduce((a, b) => a + b, 0),
    duplicates: counts.reduce((a, b) => a + Math.max(0, b - 1), 0),
    answers: { ...up.answers },
  };
}

function table(before: Run, after: Run): string {
  const rows: Array<[string, number, number]> = [
    ['logical payments', PAYMENTS, PAYMENTS],
    ['upstream answers: 429 (nothing ran)', before.answers.rate_limited, after.answers.rate_limited],
    ['upstream answers: 503 after running', before.answers.fails_after_executing, after.answers.fails_after_executing],
    ['upstream answers: too late for the agent', before.answers.slow, after.answers.slow],
    ['upstream executions', before.executions, after.executions],
    ['duplicate executions (beyond 1 per payment)', before.duplicates, after.duplicates],
    ['payments whose outcome the agent knows', before.agent.known, after.agent.known],
    ['payments held as outcome_unknown', before.agent.unknown, after.agent.unknown],
    ['payments the agent gave up on otherwise', before.agent.failed, after.agent.failed],
  ];
  const width = Math.max(...rows.map((r) => r[0].length));
  const line = (a: string, b: string, c: string): string => `  ${a.padEnd(width)}  ${b.padStart(16)}  ${c.padStart(16)}\n`;
  return (
    line('', 'without', 'with writeguard') +
    line('-'.repeat(width), '-'.repeat(16), '-'.repeat(16)) +
    rows.map(([label, a, b]) => line(label, String(a), String(b))).join('')
  );
}

async function main(): Promise<void> {
  const plan = schedule(SEED);
  let wg: { url: string; child: ChildProcess } | undefined;
  const ups: FakeUpstream[] = [];
  const watchdog = setTimeout(() => {
    process.stderr.write(`demo: still running after ${WATCHDOG_MS / 1000} s; stopping\n`);
    if (wg?.child.pid !== undefined && wg.child.exitCode === null) process.kill(wg.child.pid, 'SIGKILL');
    process.exit(1);
  }, WATCHDOG_MS);

  try {
    process.stdout.write(
      `writeguard demo: ${PAYMENTS} logical payments; a naive agent (every failure retried, up to ${MAX_ATTEMPTS} attempts, ` +
        `timeout ${AGENT_TIMEOUT_MS} ms, one Idempotency-Key per payment); a flaky payments API that ignores the key; seed ${SEED}\n`,
    );

    process.stdout.write('  run 1: agent → payments API\n');
    const direct = await startFlakyPayments(plan);
    ups.push(direct);
    const directAgent = await runAgent(direct.url);
    await direct.settled();
    const before = tally(directAgent, direct);

    process.stdout.write('  run 2: agent → writeguard (memory store) → payments API\n');
    const guarded = await startFlakyPayments(plan);
    ups.push(guarded);
    wg = await startWriteguard(guarded.url);
    const guardedAgent = await runAgent(wg.url);
    await guarded.settled();
    const after = tally(guardedAgent, guarded);

    process.stdout.write(`\n${table(before, after)}\n`);
    process.stdout.write(
      `Without writeguard the agent believes all ${before.agent.known} payments went through once, but ${before.duplicates} of its ` +
        'retries charged again: a 503 answered after the payment ran, and the answer that came too late, were retried as if ' +
        'nothing had happened.\n' +
        `With writeguard, ${after.duplicates} duplicates: a 429 proves nothing ran, so its key is released and the retry runs ` +
        'once; the late answer is stored and replayed to the retry; the payments answered 503 after running are held ' +
        `as outcome_unknown (${after.agent.unknown} dead letters to reconcile), never sent again.\n`,
    );
  } finally {
    if (wg !== undefined) await stopProcess(wg.child);
    await Promise.all(ups.map((u) => u.close()));
    clearTimeout(watchdog);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
