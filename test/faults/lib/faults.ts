// Seeded fault plans for the chaos upstream: the fault for a request is fixed by the seed, the op and
// how many times that op arrived before — whatever order concurrent requests arrive in.
import { RATE_STYLES, type ArrivalInfo, type Fault } from './chaos-upstream.js';
import { hashUnit } from './rng.js';

export interface FaultMix {
  normal: number;
  slow: number;
  hang: number;
  destroy: number;
  r429: number;
  r503: number;
  r503exec: number;
  drip: number;
}

export const NO_FAULTS: FaultMix = { normal: 1, slow: 0, hang: 0, destroy: 0, r429: 0, r503: 0, r503exec: 0, drip: 0 };

export function faultPlan(seed: number, mix: FaultMix, label: string): (info: ArrivalInfo) => Fault {
  const entries = Object.entries(mix) as Array<[keyof FaultMix, number]>;
  const total = entries.reduce((a, [, w]) => a + w, 0);
  let anon = 0;
  return (info) => {
    const id = info.op ?? info.key ?? `anon-${anon++}`;
    // Retries of an op that was refused (429/503) converge: its third arrival is answered normally.
    if (info.arrival >= 2) return { kind: 'normal' };
    let u = hashUnit(seed, label, id, info.arrival) * total;
    const style = RATE_STYLES[Math.floor(hashUnit(seed, label, id, info.arrival, 'style') * RATE_STYLES.length)]!;
    for (const [kind, w] of entries) {
      if (u < w) {
        switch (kind) {
          case 'normal':
            return { kind: 'normal' };
          case 'slow':
            return { kind: 'normal', delayMs: 100 + Math.floor(hashUnit(seed, id, 'delay') * 600) };
          case 'hang':
            return { kind: 'hang' };
          case 'destroy':
            return { kind: 'destroy' };
          case 'r429':
            return { kind: 'r429', style };
          case 'r503':
            return { kind: 'r503', style, executed: false };
          case 'r503exec':
            return { kind: 'r503', style, executed: true };
          case 'drip':
            return { kind: 'drip', chunks: 4, everyMs: 150 + Math.floor(hashUnit(seed, id, 'drip') * 150) };
        }
      }
      u -= w;
    }
    return { kind: 'normal' };
  };
}

export const WORKLOAD_MIX: FaultMix = { normal: 40, slow: 10, hang: 8, destroy: 8, r429: 14, r503: 6, r503exec: 4, drip: 10 };
