/**
 * Seeded pseudo-random numbers for the synthetic heads.
 *
 * Generator: sfc32 (Chris Doty-Humphrey's "small fast counting" generator, 4×32-bit state, period ≥ 2³²), its
 * state filled from the seed by splitmix32. All arithmetic is 32-bit integer (`Math.imul`, `>>> 0`), so a seed
 * gives the same stream on every run and every platform. `fork(label)` derives an independent stream from the
 * current seed and a string label (FNV-1a hash), so that adding draws to one part of the generator (say, hair)
 * does not shift the numbers another part (say, the skull) receives — parameter sets stay stable as the
 * generator grows.
 */
export interface Rng {
  /** The seed this stream was created from (after label mixing for forks). */
  readonly seed: number;
  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number;
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number;
  /** Integer uniform in [0, n). */
  int(n: number): number;
  /** Standard normal (Box–Muller). */
  normal(): number;
  /** true with probability p. */
  chance(p: number): boolean;
  /** One element of a non-empty array, uniformly. */
  pick<T>(items: readonly T[]): T;
  /** One element, with the given non-negative weights. */
  weighted<T>(items: ReadonlyArray<readonly [T, number]>): T;
  /** An independent stream derived from this stream's seed and `label`. */
  fork(label: string): Rng;
}

/** splitmix32: a 32-bit mixing step used only to expand a seed into generator state. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a over the UTF-16 code units of a string, mixed with a seed. */
export function hashString(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Creates a stream from any integer seed (only its low 32 bits matter). */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  const seed32 = Math.trunc(seed) >>> 0;
  const init = { s: seed32 };
  let a = splitmix32(init);
  let b = splitmix32(init);
  let c = splitmix32(init);
  let d = splitmix32(init);
  const nextU32 = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  // Discard a few outputs so that nearby seeds decorrelate fully.
  for (let i = 0; i < 12; i++) nextU32();
  let spare: number | undefined;
  const rng: Rng = {
    seed: seed32,
    next: () => nextU32() / 4294967296,
    range: (lo, hi) => lo + (hi - lo) * rng.next(),
    int: (n) => {
      if (!Number.isInteger(n) || n <= 0) throw new RangeError(`int(n) needs a positive integer, got ${n}`);
      return Math.floor(rng.next() * n);
    },
    normal: () => {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return s;
      }
      const u = 1 - rng.next(); // (0, 1]: log is finite
      const v = rng.next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    chance: (p) => rng.next() < p,
    pick: (items) => {
      if (items.length === 0) throw new RangeError('pick() from an empty array');
      return items[rng.int(items.length)];
    },
    weighted: (items) => {
      const total = items.reduce((s, [, w]) => s + w, 0);
      if (!(total > 0)) throw new RangeError('weighted() needs a positive total weight');
      let u = rng.next() * total;
      for (const [item, w] of items) {
        if (u < w) return item;
        u -= w;
      }
      return items[items.length - 1][0];
    },
    fork: (label) => createRng(hashString(label, seed32)),
  };
  return rng;
}
