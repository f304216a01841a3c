/**
 * The sampler's random source.
 *
 * Generator: **Philox4x32-10** (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3",
 * SC 2011; the counter-based generator of Random123, also used by cuRAND and JAX), keyed by the 64-bit seed
 * (key = [seed mod 2³², ⌊seed / 2³²⌋]), with a 128-bit block counter starting at 0 that increments by one per
 * block. Each block gives four uint32 words u; each word maps to a uniform in (0, 1) as (u + 0.5)·2⁻³², and each
 * pair (u₁, u₂) of consecutive words gives two standard normals by Box–Muller:
 * r = √(−2 ln u₁), z₀ = r cos 2πu₂, z₁ = r sin 2πu₂ (computed in float64, stored as float32).
 * A draw of n values takes ⌈n/4⌉ fresh blocks (unused words of its last block are discarded), so the stream of
 * every draw is fixed by the seed and the sizes of the draws before it.
 *
 * It does not reproduce torch's generator (the reference's numbers): golden tests inject recorded noise through
 * `RecordedNoise` instead.
 */

/** Where a draw is used; the reference draws in this order: image_embeds, latents, then one per DDIM step (η > 0). */
export type NoiseSite = 'image_embeds' | 'latents' | 'step';

/** A source of standard normal noise for the sampler. */
export interface NoiseSource {
  normal(shape: readonly number[], site: NoiseSite): Float32Array;
}

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 (the low half is Math.imul). */
function mulhi(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const lolo = aLo * bLo;
  const mid1 = aHi * bLo;
  const mid2 = aLo * bHi;
  const carry = ((lolo >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff)) >>> 16;
  return (aHi * bHi + (mid1 >>> 16) + (mid2 >>> 16) + carry) >>> 0;
}

/** One Philox4x32-10 block: 10 rounds on counter `ctr` with key `key` (both uint32 words). */
export function philox4x32(ctr: readonly [number, number, number, number], key: readonly [number, number]): [number, number, number, number] {
  let [c0, c1, c2, c3] = ctr;
  let [k0, k1] = key;
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  return [c0, c1, c2, c3];
}

/** Seeded, deterministic standard normals (Philox4x32-10 + Box–Muller; see the file comment). */
export class PhiloxNormal implements NoiseSource {
  private readonly key: [number, number];
  private block = 0;

  constructor(readonly seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
    this.key = [seed % 2 ** 32 >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
  }

  /** Blocks consumed so far (the counter of the next block). */
  get position(): number {
    return this.block;
  }

  normal(shape: readonly number[]): Float32Array {
    const n = shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    const twoPi = 2 * Math.PI;
    for (let i = 0; i < n; i += 4) {
      const b = this.block++;
      const w = philox4x32([b >>> 0, Math.floor(b / 2 ** 32) >>> 0, 0, 0], this.key);
      for (let j = 0; j < 4 && i + j < n; j += 2) {
        const u1 = (w[j] + 0.5) * 2 ** -32;
        const u2 = (w[j + 1] + 0.5) * 2 ** -32;
        const r = Math.sqrt(-2 * Math.log(u1));
        out[i + j] = r * Math.cos(twoPi * u2);
        if (i + j + 1 < n) out[i + j + 1] = r * Math.sin(twoPi * u2);
      }
    }
    return out;
  }
}

/** Replays recorded draws in order, checking each site and shape; for golden tests and reproductions. */
export class RecordedNoise implements NoiseSource {
  private next = 0;

  constructor(private readonly draws: readonly { site: NoiseSite; shape: readonly number[]; data: Float32Array }[]) {}

  normal(shape: readonly number[], site: NoiseSite): Float32Array {
    const d = this.draws[this.next];
    if (!d) throw new Error(`RecordedNoise: draw #${this.next} (${site} ${JSON.stringify(shape)}) requested but only ${this.draws.length} were recorded`);
    if (d.site !== site || JSON.stringify(d.shape) !== JSON.stringify(shape)) {
      throw new Error(`RecordedNoise: draw #${this.next} was recorded as ${d.site} ${JSON.stringify(d.shape)}, requested ${site} ${JSON.stringify(shape)}`);
    }
    this.next++;
    return d.data.slice();
  }

  /** Throws unless every recorded draw was used. */
  assertDrained(): void {
    if (this.next !== this.draws.length) throw new Error(`RecordedNoise: ${this.draws.length - this.next} recorded draws were not used`);
  }
}
