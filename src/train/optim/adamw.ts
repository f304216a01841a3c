/**
 * AdamW with a choice of moment storage, updating parameters in place:
 *  - 'fp32': torch.optim.AdamW's numbers (the default);
 *  - '8bit': bitsandbytes' blockwise 8-bit AdamW (`use_8bit_adam`): m with the signed dynamic map, v with the
 *    unsigned one, blocks of 256 with one float32 absmax each; tensors under 4096 elements keep fp32 moments, as
 *    bitsandbytes' `min_8bit_size`. Each block is dequantised, updated in float64 and quantised again, so no
 *    full-size float copy of a moment ever exists (1 byte per moment value + 4 bytes per 256).
 * The arithmetic per value is torch's: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p·(1 − lr·wd) −
 * (lr / (1−β1ᵗ))·m / (√v / √(1−β2ᵗ) + ε).
 */
import { BLOCK, boundaries, dynamicMap, quantizeBlock } from './quant8.ts';

export type MomentStorage = 'fp32' | '8bit';
export const MIN_8BIT_SIZE = 4096;

export interface AdamWConfig {
  betas: readonly [number, number];
  eps: number;
  weightDecay: (name: string) => number;
  moments: MomentStorage;
}

export type Moments =
  | { kind: 'fp32'; m: Float32Array; v: Float32Array }
  | { kind: '8bit'; q1: Uint8Array; absmax1: Float32Array; q2: Uint8Array; absmax2: Float32Array };

const CODE1 = dynamicMap(true),
  CODE2 = dynamicMap(false);
const BOUNDS1 = boundaries(CODE1),
  BOUNDS2 = boundaries(CODE2);

export class MomentAdamW {
  /** Updates applied (the bias-correction exponent). */
  t = 0;
  readonly state = new Map<string, Moments>();

  constructor(
    readonly params: ReadonlyMap<string, Float32Array>,
    readonly cfg: AdamWConfig,
  ) {}

  private moments(name: string, n: number): Moments {
    let s = this.state.get(name);
    if (!s) {
      s =
        this.cfg.moments === '8bit' && n >= MIN_8BIT_SIZE
          ? {
              kind: '8bit',
              q1: new Uint8Array(n),
              absmax1: new Float32Array(Math.ceil(n / BLOCK)),
              q2: new Uint8Array(n),
              absmax2: new Float32Array(Math.ceil(n / BLOCK)),
            }
          : { kind: 'fp32', m: new Float32Array(n), v: new Float32Array(n) };
      this.state.set(name, s);
    }
    return s;
  }

  /** One update from gradients keyed by parameter name, at learning rate `lr`. */
  step(grads: ReadonlyMap<string, Float32Array>, lr: number): void {
    const [b1, b2] = this.cfg.betas;
    this.t++;
    const corr1 = 1 - b1 ** this.t,
      corr2 = Math.sqrt(1 - b2 ** this.t);
    const stepSize = lr / corr1,
      eps = this.cfg.eps;
    for (const [name, g] of grads) {
      const p = this.params.get(name);
      if (!p) throw new Error(`AdamW: gradient for unknown parameter "${name}"`);
      if (p.length !== g.length)
        throw new Error(`AdamW: gradient for "${name}" has ${g.length} values, parameter ${p.length}`);
      const decay = 1 - lr * this.cfg.weightDecay(name);
      const s = this.moments(name, p.length);
      if (s.kind === 'fp32') {
        const { m, v } = s;
        for (let i = 0; i < p.length; i++) {
          const gi = g[i]!;
          const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi);
          const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi);
          p[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / corr2 + eps);
        }
        continue;
      }
      const m = new Float64Array(BLOCK),
        v = new Float64Array(BLOCK);
      for (let b = 0, from = 0; from < p.length; b++, from += BLOCK) {
        const to = Math.min(p.length, from + BLOCK),
          a1 = s.absmax1[b]!,
          a2 = s.absmax2[b]!;
        for (let i = from; i < to; i++) {
          const gi = g[i]!,
            k = i - from;
          const mi = (m[k] = b1 * CODE1[s.q1[i]!]! * a1 + (1 - b1) * gi);
          const vi = (v[k] = b2 * CODE2[s.q2[i]!]! * a2 + (1 - b2) * gi * gi);
          p[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / corr2 + eps);
        }
        s.absmax1[b] = quantizeInto(m, to - from, BOUNDS1, s.q1, from);
        s.absmax2[b] = quantizeInto(v, to - from, BOUNDS2, s.q2, from);
      }
    }
  }

  /** Bytes held by the moments. */
  get stateBytes(): number {
    let n = 0;
    for (const s of this.state.values())
      n += s.kind === 'fp32' ? s.m.byteLength + s.v.byteLength : s.q1.byteLength * 2 + s.absmax1.byteLength * 2;
    return n;
  }
}

/** Quantises block values `x[0, n)` into `q[at, at + n)`; returns the absmax. */
function quantizeInto(x: Float64Array, n: number, bounds: Float32Array, q: Uint8Array, at: number): number {
  const view = q.subarray(at, at + n);
  return quantizeBlock(x.subarray(0, n), 0, n, bounds, view);
}
