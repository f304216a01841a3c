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
import { sharedParamsChanged } from '../../core/session.ts';
import type { AdamWCoeffs } from './kernels.ts';
import { LoopPool, sharedFloat32 } from './pool.ts';
import { BLOCK } from './quant8.ts';
import type { Task } from './tasks.ts';

export type MomentStorage = 'fp32' | '8bit';
export const MIN_8BIT_SIZE = 4096;
/** Values per task: a multiple of the 8-bit block, small enough to balance threads, large enough to amortise. */
const CHUNK = 1 << 18;

export interface AdamWConfig {
  betas: readonly [number, number];
  eps: number;
  weightDecay: (name: string) => number;
  moments: MomentStorage;
  /**
   * Extra threads for the update loops (default 0). They work on parameters, gradients and moments held in
   * SharedArrayBuffers (`shareAll`, `sharedFloat32`); anything else is updated on the main thread.
   */
  workers?: number;
}

export type Moments =
  | { kind: 'fp32'; m: Float32Array; v: Float32Array }
  | { kind: '8bit'; q1: Uint8Array; absmax1: Float32Array; q2: Uint8Array; absmax2: Float32Array };

export interface StepOptions {
  /** Multiplies every gradient first (clip_grad_norm_'s factor; default 1). */
  gradScale?: number;
  /** Zero the gradients as they are consumed (default false). */
  zeroGrad?: boolean;
}

export class MomentAdamW {
  /** Updates applied (the bias-correction exponent). */
  t = 0;
  readonly state = new Map<string, Moments>();
  private readonly pool: LoopPool;

  constructor(
    readonly params: ReadonlyMap<string, Float32Array>,
    readonly cfg: AdamWConfig,
  ) {
    this.pool = new LoopPool(cfg.workers ?? 0);
  }

  private moments(name: string, n: number): Moments {
    let s = this.state.get(name);
    if (!s) {
      const f32 = (k: number) => (this.pool.size ? sharedFloat32(k) : new Float32Array(k));
      const u8 = (k: number) => (this.pool.size ? new Uint8Array(new SharedArrayBuffer(k)) : new Uint8Array(k));
      const blocks = Math.ceil(n / BLOCK);
      s =
        this.cfg.moments === '8bit' && n >= MIN_8BIT_SIZE
          ? { kind: '8bit', q1: u8(n), absmax1: f32(blocks), q2: u8(n), absmax2: f32(blocks) }
          : { kind: 'fp32', m: f32(n), v: f32(n) };
      this.state.set(name, s);
    }
    return s;
  }

  private *ranges(n: number): Generator<[number, number]> {
    for (let from = 0; from < n; from += CHUNK) yield [from, Math.min(n, from + CHUNK)];
  }

  /**
   * Σ g² over all gradients (float64, summed per fixed-size chunk and then in chunk order, so the result does
   * not depend on the number of threads), after replacing NaN by 0 and ±Inf by ±1e-3 in place.
   */
  async cleanAndSumSquares(grads: Iterable<Float32Array>): Promise<number> {
    const tasks: Task[] = [];
    for (const g of grads)
      for (const [from, to] of this.ranges(g.length)) tasks.push({ op: 'sumsq', g: this.pool.id(g), from, to });
    return (await this.pool.run(tasks)).reduce((a, b) => a + b, 0);
  }

  async zero(grads: Iterable<Float32Array>): Promise<void> {
    const tasks: Task[] = [];
    for (const g of grads)
      for (const [from, to] of this.ranges(g.length)) tasks.push({ op: 'zero', g: this.pool.id(g), from, to });
    await this.pool.run(tasks);
  }

  /** One update from gradients keyed by parameter name, at learning rate `lr`. */
  async step(grads: ReadonlyMap<string, Float32Array>, lr: number, opts: StepOptions = {}): Promise<void> {
    const [b1, b2] = this.cfg.betas;
    this.t++;
    const base = {
      b1,
      b2,
      stepSize: lr / (1 - b1 ** this.t),
      corr2: Math.sqrt(1 - b2 ** this.t),
      eps: this.cfg.eps,
      gradScale: opts.gradScale ?? 1,
      zeroGrad: opts.zeroGrad ?? false,
    };
    const tasks: Task[] = [];
    for (const [name, g] of grads) {
      const p = this.params.get(name);
      if (!p) throw new Error(`AdamW: gradient for unknown parameter "${name}"`);
      if (p.length !== g.length)
        throw new Error(`AdamW: gradient for "${name}" has ${g.length} values, parameter ${p.length}`);
      const c: AdamWCoeffs = { ...base, decay: 1 - lr * this.cfg.weightDecay(name) };
      const s = this.moments(name, p.length);
      const id = this.pool.id.bind(this.pool);
      for (const [from, to] of this.ranges(p.length)) {
        tasks.push(
          s.kind === 'fp32'
            ? { op: 'fp32', p: id(p), g: id(g), m: id(s.m), v: id(s.v), from, to, c }
            : {
                op: '8bit',
                p: id(p),
                g: id(g),
                q1: id(s.q1),
                a1: id(s.absmax1),
                q2: id(s.q2),
                a2: id(s.absmax2),
                from,
                to,
                c,
              },
        );
      }
    }
    await this.pool.run(tasks);
    // Sessions read shared-memory parameters through private copies; the update makes them stale.
    sharedParamsChanged();
  }

  /** Bytes held by the moments. */
  get stateBytes(): number {
    let n = 0;
    for (const s of this.state.values())
      n += s.kind === 'fp32' ? s.m.byteLength + s.v.byteLength : s.q1.byteLength * 2 + s.absmax1.byteLength * 2;
    return n;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

/** A copy of moments in SharedArrayBuffers (for the optimizer's worker threads). */
export function shareMoments(m: Moments): Moments {
  const f = (a: Float32Array) => {
    const s = sharedFloat32(a.length);
    s.set(a);
    return s;
  };
  const u = (a: Uint8Array) => {
    const s = new Uint8Array(new SharedArrayBuffer(a.length));
    s.set(a);
    return s;
  };
  return m.kind === 'fp32'
    ? { kind: 'fp32', m: f(m.m), v: f(m.v) }
    : { kind: '8bit', q1: u(m.q1), absmax1: f(m.absmax1), q2: u(m.q2), absmax2: f(m.absmax2) };
}
