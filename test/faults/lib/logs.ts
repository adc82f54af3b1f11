// Scenario 9, across every scenario: exactly one `msg: "response"` line per response, each with
// request_id and code, and none of the planted secrets anywhere in any process's output.
import type { Checker } from './checker.js';
import { SECRETS } from './checker.js';
import type { LogLine } from '../../helpers/writeguard.js';
import type { allWriteguards } from './procs.js';

export interface ExpectedLine {
  scenario: string;
  origin: string;
  /** The ids the answer carried (x-request-id, request-id): one of them must have a line. */
  requestIds: string[];
}

export interface LogReport {
  processes: number;
  lines: number;
  answered: number;
  missing: string[];
  malformed: string[];
  doubled: string[];
  extra: string[];
  secrets: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** `noExtraCheck`: scenarios whose requests are not all tracked one by one (raw sockets, kills). */
export function checkLogs(
  procs: typeof allWriteguards,
  checkers: Array<{ scenario: string; checker: Checker }>,
  expected: ExpectedLine[],
  noExtraCheck: Set<string>,
): LogReport {
  const report: LogReport = {
    processes: procs.length,
    lines: 0,
    answered: 0,
    missing: [],
    malformed: [],
    doubled: [],
    extra: [],
    secrets: [],
  };
  // Lines by process group: a scenario's processes listening on the same ports (a restarted process
  // keeps its ports), keyed by scenario and origins; a port may be reused by a later scenario.
  const groups = new Map<string, { lines: LogLine[]; killed: boolean }>();
  const groupOf = new Map<string, string>();
  for (const p of procs) {
    const lines = p.logs.responses();
    report.lines += lines.length;
    for (const line of lines) {
      if (typeof line.request_id !== 'string' || line.request_id === '' || !('code' in line)) {
        report.malformed.push(`${p.scenario}/${p.name}: ${JSON.stringify(line).slice(0, 160)}`);
      }
    }
    const id = `${p.scenario}|${p.listen
      .map((o) => o.replace(/\/$/, ''))
      .sort()
      .join(',')}`;
    const g = groups.get(id) ?? { lines: [], killed: false };
    g.lines.push(...lines);
    g.killed ||= p.killed;
    groups.set(id, g);
    for (const origin of p.listen) groupOf.set(`${p.scenario}|${origin.replace(/\/$/, '')}`, id);
    // writeguard's own ids are one per request: one seen twice is a request logged twice.
    const own = new Map<string, number>();
    for (const line of lines)
      if (typeof line.request_id === 'string' && UUID.test(line.request_id)) own.set(line.request_id, (own.get(line.request_id) ?? 0) + 1);
    for (const [id, n] of own) if (n > 1) report.doubled.push(`${p.scenario}/${p.name}: ${id} logged ${n} times`);
    const text = p.raw() + p.stderr();
    for (const [name, value] of Object.entries(SECRETS)) if (text.includes(value)) report.secrets.push(`${p.scenario}/${p.name}: ${name}`);
  }
  const pools = new Map<string, Map<string, number>>();
  const pool = (id: string): Map<string, number> => {
    let m = pools.get(id);
    if (m === undefined) {
      m = new Map();
      for (const line of groups.get(id)?.lines ?? []) {
        const rid = String(line.request_id);
        m.set(rid, (m.get(rid) ?? 0) + 1);
      }
      pools.set(id, m);
    }
    return m;
  };
  const take = (id: string, ids: string[]): boolean => {
    const m = pool(id);
    for (const rid of ids) {
      const n = m.get(rid) ?? 0;
      if (n > 0) {
        m.set(rid, n - 1);
        return true;
      }
    }
    return false;
  };
  const reached = new Map<string, number>();
  for (const { scenario, checker } of checkers) {
    for (const ex of checker.traffic.exchanges) {
      const id = groupOf.get(`${scenario}|${ex.origin}`) ?? `${scenario}|${ex.origin}`;
      if (!ex.notReached) reached.set(id, (reached.get(id) ?? 0) + 1);
      if (ex.status === null) continue;
      report.answered++;
      if (!take(id, ex.requestIds))
        report.missing.push(`${scenario}: ${ex.method} ${ex.path} → ${ex.status} ${ex.code ?? ''} [${ex.requestIds.join(',')}]`);
    }
  }
  for (const e of expected) {
    const id = groupOf.get(`${e.scenario}|${e.origin}`) ?? `${e.scenario}|${e.origin}`;
    reached.set(id, (reached.get(id) ?? 0) + 1);
    report.answered++;
    if (!take(id, e.requestIds)) report.missing.push(`${e.scenario}: expected a line for ${e.requestIds.join(' or ')}`);
  }
  // More lines than requests that reached a process means some request was logged twice.
  for (const [id, g] of groups) {
    const sent = reached.get(id);
    if (sent === undefined || noExtraCheck.has(id.split('|')[0]!)) continue; // a group the suite did not track request by request
    if (g.lines.length > sent) report.extra.push(`${id}: ${g.lines.length} lines for ${sent} requests`);
  }
  return report;
}
