/**
 * Counter-based randomness for training: every draw comes from a stream named by (seed, label, counters…), e.g.
 * (run seed, "item", pass, slot). A stream is a function of its name alone, so resuming from a checkpoint at pass
 * p draws exactly what the uninterrupted run drew at p; no generator state needs saving.
 */
import { createRng, hashString } from '../synth/rng.ts';

export interface StreamRng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer uniform in [0, n). */
  int(n: number): number;
  /** k distinct elements in random order (Python's random.sample semantics). */
  sample<T>(items: readonly T[], k: number): T[];
  /** A permutation of 0..n−1. */
  permutation(n: number): number[];
}

export function streamRng(seed: number, label: string, ...counters: number[]): StreamRng {
  let h = hashString(label, seed >>> 0);
  for (const c of counters) h = hashString(`${c}`, h);
  const r = createRng(h);
  const int = (n: number) => Math.min(n - 1, Math.floor(r.next() * n));
  return {
    next: () => r.next(),
    int,
    sample<T>(items: readonly T[], k: number): T[] {
      if (k > items.length) throw new RangeError(`cannot draw ${k} of ${items.length} items`);
      const pool = [...items];
      for (let i = 0; i < k; i++) {
        const j = i + int(pool.length - i);
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      }
      return pool.slice(0, k);
    },
    permutation(n: number): number[] {
      return this.sample([...Array(n).keys()], n);
    },
  };
}
