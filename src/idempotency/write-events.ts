// What the end of a protected write tells the rest of the fleet (DESIGN §10.5): a refusal counted
// towards the agent's pause, and the alerts operators asked for. Never changes the agent's answer:
// the breaker count is best effort, and alerts are queued, never awaited.
import type { UpstreamConfig } from '../config/schema.js';
import type { AlertType } from '../config/alerts-schema.js';
import { countsAsRefusal } from '../leash/breaker.js';
import type { Alerts } from '../observe/alerts.js';
import type { Logger } from '../observe/logger.js';
import type { Store } from '../store/store.js';
import type { WriteResult } from './write.js';

/** writeguard's answers that operators may want to hear of, by alert type. */
const ALERTED: ReadonlySet<string> = new Set<AlertType>(['limit_exceeded', 'approval_required', 'outcome_unknown']);

export interface EndedWrite {
  upstream: UpstreamConfig;
  scope: string;
  keyHash: string | null;
  result: WriteResult;
}

export function writeEvents(deps: { store: Store; log: Logger; alerts: Alerts; namespace: string }) {
  const { store, log, alerts } = deps;
  const agentOf = (scope: string): string => scope.slice(deps.namespace.length + 1);

  function alert(type: AlertType, end: EndedWrite, fields: { amount?: number | null; budget?: string | null; detail?: string }): void {
    alerts.emit({ type, agent: agentOf(end.scope), upstream: end.upstream.name, keyHash: end.keyHash, ...fields });
  }

  async function breakerCount(end: EndedWrite, rule: NonNullable<UpstreamConfig['breaker']>, refused: boolean): Promise<void> {
    if (!refused) return;
    try {
      const until = await store.noteRefusal(end.scope, end.upstream.name, {
        refusals: rule.refusals,
        windowMs: rule.windowSec * 1000,
        pauseMs: rule.pauseSec * 1000,
      });
      if (until === null) return;
      const pausedUntil = new Date(until).toISOString();
      log.warn({ upstream: end.upstream.name, paused_until: pausedUntil }, 'agent paused by the breaker');
      alert('agent_paused', end, {
        detail: `paused until ${pausedUntil} after ${rule.refusals} refused writes within ${rule.windowSec} s`,
      });
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'breaker count failed');
    }
  }

  return async function ended(end: EndedWrite): Promise<void> {
    const { result } = end;
    const code = result.kind === 'error' ? result.error.code : null;
    if (code !== null && ALERTED.has(code)) {
      const { extensions } = (result as Extract<WriteResult, { kind: 'error' }>).error;
      const amount = typeof extensions['amount'] === 'number' ? extensions['amount'] : null;
      const budget = typeof extensions['budget'] === 'string' ? extensions['budget'] : null;
      alert(code as AlertType, end, { amount, budget, detail: (result as Extract<WriteResult, { kind: 'error' }>).error.message });
    } else if (result.line.outcome === 'unknown')
      alert('outcome_unknown', end, { detail: 'the write may have run; held as a dead letter' });
    if (end.upstream.breaker === null) return;
    const upstreamStatus = result.kind === 'answer' ? result.answer.status : null;
    await breakerCount(end, end.upstream.breaker, countsAsRefusal({ code, upstreamStatus }));
  };
}
