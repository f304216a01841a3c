/**
 * Optimizers over parameter buffers (in place, on the host): AdamW as in `torch.optim.AdamW` and
 * global-norm gradient clipping as in `torch.nn.utils.clip_grad_norm_`.
 */
import type { HostTensor, ParamStore } from './session.ts';

export interface AdamWOptions {
  lr: number;
  /** Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay (default 0.01, PyTorch's); a function gives it per parameter (e.g. 0 for 1-D params). */
  weightDecay?: number | ((name: string, size: number) => number);
}

export class AdamW {
  /** Steps taken (the bias-correction exponent). */
  t = 0;
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();

  constructor(readonly params: ParamStore, readonly opts: AdamWOptions) {
    for (const [name, p] of params) {
      if (!(p instanceof Float32Array)) throw new Error(`AdamW: parameter "${name}" is not float32 (keep fp32 master weights for training)`);
    }
  }

  /**
   * One update from gradients keyed by parameter name (missing names are skipped: frozen or unused).
   * `lr` overrides the configured rate for this step (schedules).
   */
  step(grads: ReadonlyMap<string, Float32Array>, lr = this.opts.lr): void {
    const [b1, b2] = this.opts.betas ?? [0.9, 0.999];
    const eps = this.opts.eps ?? 1e-8;
    this.t++;
    const bc1 = 1 - b1 ** this.t;
    const sqrtBc2 = Math.sqrt(1 - b2 ** this.t);
    const stepSize = lr / bc1;
    for (const [name, g] of grads) {
      const p = this.params.get(name) as Float32Array | undefined;
      if (!p) throw new Error(`AdamW: gradient for unknown parameter "${name}"`);
      if (g.length !== p.length) throw new Error(`AdamW: gradient for "${name}" has ${g.length} values, parameter ${p.length}`);
      const wd = typeof this.opts.weightDecay === 'function' ? this.opts.weightDecay(name, p.length) : this.opts.weightDecay ?? 0.01;
      let m = this.m.get(name), v = this.v.get(name);
      if (!m || !v) { m = new Float32Array(p.length); v = new Float32Array(p.length); this.m.set(name, m); this.v.set(name, v); }
      const decay = 1 - lr * wd;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        const mi = (m[i] = b1 * m[i]! + (1 - b1) * gi);
        const vi = (v[i] = b2 * v[i]! + (1 - b2) * gi * gi);
        p[i] = p[i]! * decay - stepSize * mi / (Math.sqrt(vi) / sqrtBc2 + eps);
      }
    }
  }
}

/** Scales all gradients in place so their global L2 norm is at most `maxNorm`; returns the norm before clipping. */
export function clipGradNorm(grads: Iterable<Float32Array>, maxNorm: number): number {
  const list = [...grads];
  let sq = 0;
  for (const g of list) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  const norm = Math.sqrt(sq);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (const g of list) for (let i = 0; i < g.length; i++) g[i]! *= coef;
  return norm;
}

/** Picks the `grad/<name>` outputs of a run (see `lossAndParamGrads`) into a name → gradient map. */
export function gradsFromOutputs(outputs: Record<string, HostTensor>): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [k, t] of Object.entries(outputs)) if (k.startsWith('grad/')) out.set(k.slice(5), t.data as Float32Array);
  return out;
}
