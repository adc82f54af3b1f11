// What a scenario gets from the runner, and what it hands back for the summary table.
import { Checker, type Verdict } from './checker.js';
import { rng, type Rng } from './rng.js';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** A src bug the suite knows about: a failure is printed FAILED-KNOWN and does not fail the run. */
  known?: string;
}

export interface ScenarioResult {
  id: string;
  title: string;
  operations: number;
  executions: number;
  duplicates: number;
  lost: number;
  checks: Check[];
  notes: string[];
  error: string | null;
  durationMs: number;
}

export class ScenarioContext {
  readonly checks: Check[] = [];
  readonly notes: string[] = [];
  readonly checkers: Checker[] = [];
  readonly rng: Rng;
  private readonly cleanups: Array<() => unknown> = [];
  operations = 0;
  executions = 0;
  duplicates = 0;
  lost = 0;

  constructor(
    readonly id: string,
    readonly seed: number,
    readonly options: { soakSec: number },
  ) {
    this.rng = rng(seed).fork(id);
  }

  checker(): Checker {
    const c = new Checker(this.id);
    this.checkers.push(c);
    return c;
  }

  check(name: string, ok: boolean, detail = '', known?: string): boolean {
    this.checks.push({ name, ok, detail, ...(known === undefined ? {} : { known }) });
    return ok;
  }

  note(text: string): void {
    this.notes.push(text);
  }

  /** Adds a checker's verdict to the scenario's numbers, and its problems as failed checks. */
  verdict(label: string, v: Verdict): void {
    this.operations += v.operations;
    this.executions += v.executions;
    this.duplicates += v.duplicates;
    this.lost += v.lost;
    const ends = Object.entries(v.ends)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ');
    this.check(
      `${label}: every operation executed at most once`,
      v.duplicates === 0,
      v.problems
        .filter((p) => p.includes('executed'))
        .slice(0, 5)
        .join('; '),
    );
    this.check(
      `${label}: every operation ends in a known state (${ends})`,
      v.lost === 0 && v.problems.length === 0,
      v.problems.slice(0, 8).join('; '),
    );
  }

  /** Runs at the end of the scenario, last registered first, whatever happened. */
  defer(fn: () => unknown): void {
    this.cleanups.push(fn);
  }

  async cleanup(): Promise<void> {
    for (const fn of this.cleanups.reverse()) {
      try {
        await fn();
      } catch {
        // best effort: every process is also killed by PID on exit
      }
    }
  }
}

export interface Scenario {
  id: string;
  title: string;
  /** Hard bound on the scenario's time. */
  limitMs: number;
  run(ctx: ScenarioContext): Promise<void>;
}
