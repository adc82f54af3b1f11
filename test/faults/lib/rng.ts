// Seeded randomness: the same seed gives the same plan (which faults, which delays, which targets).
import { createHash } from 'node:crypto';

export interface Rng {
  /** [0, 1) */
  next(): number;
  int(min: number, maxInclusive: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** A child generator with its own stream (stable whatever the parent draws later). */
  fork(label: string): Rng;
  seed: number;
}

export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    // mulberry32
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const self: Rng = {
    seed,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)]!,
    fork: (label) => rng(hashSeed(seed, label)),
  };
  return self;
}

/** A number in [0, 1) fixed by the seed and the labels: the same whatever order requests arrive in. */
export function hashUnit(seed: number, ...labels: (string | number)[]): number {
  return hashSeed(seed, labels.join('\u0000')) / 4294967296;
}

export function hashSeed(seed: number, label: string): number {
  return createHash('sha256').update(`${seed}\u0000${label}`).digest().readUInt32BE(0);
}
