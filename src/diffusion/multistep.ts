/**
 * Multistep samplers that reach DDIM-50's quality in fewer UNet evaluations, as diffusers computes them on FaceLift's
 * scheduler config (v-prediction, scaled-linear betas, leading spacing with steps_offset 1):
 *  - DPM-Solver++ (2M): `DPMSolverMultistepScheduler` with algorithm `dpmsolver++`, order 2, `midpoint`,
 *    `lower_order_final`, `final_sigmas_type: zero` (Lu et al. 2022);
 *  - UniPC: `UniPCMultistepScheduler` with `bh2`, order 2, `predict_x0`, the corrector on every step but the first
 *    (Zhao et al. 2023).
 * Both are deterministic (no noise per step) and work in the σ = √((1−ᾱ)/ᾱ) parametrisation: α_t = 1/√(σ²+1),
 * σ_t = σ·α_t, λ = log α_t − log σ_t, with x̂₀ = α_t·x − σ_t·v for the v-prediction model.
 *
 * The per-step scalars follow the reference's float32 tensors (Math.fround); the element-wise updates run in float64.
 */
import { UserError } from '../util/errors.ts';
import { alphasCumprodFor, type SchedulerConfig } from './noise-schedule.ts';

const f32 = Math.fround;

export type MultistepKind = 'dpmpp2m' | 'unipc';

/** `set_timesteps(n)` of both schedulers: note that "leading" spaces by ⌊T/(n+1)⌋, not DDIM's ⌊T/n⌋. */
export function multistepTimesteps(config: SchedulerConfig, n: number): number[] {
  const T = config.numTrainTimesteps;
  if (!Number.isInteger(n) || n < 1 || n > T) {
    throw new UserError(`the number of sampling steps must be an integer from 1 to ${T}, got ${n}`);
  }
  switch (config.timestepSpacing) {
    case 'leading': {
      const ratio = Math.floor(T / (n + 1));
      return Array.from({ length: n }, (_, i) => (n - i) * ratio + config.stepsOffset);
    }
    case 'linspace':
      // np.linspace(0, T − 1, n + 1).round()[::-1][:-1] (numpy rounds halves to even)
      return Array.from({ length: n }, (_, i) => roundHalfEven(((n - i) * (T - 1)) / n));
    case 'trailing': {
      const ratio = T / n;
      return Array.from({ length: n }, (_, i) => roundHalfEven(T - i * ratio) - 1);
    }
  }
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface MultistepResult {
  prevSample: Float64Array;
  predOriginalSample: Float64Array;
}

interface Scalars {
  alpha: number;
  sigma: number;
  lambda: number;
}

/** A sampling run: `step` is called once per timestep, in order, with the (guided) model output. */
export class MultistepSampler {
  readonly timesteps: number[];
  /** σ at each timestep, then 0 after the last (float32, as the reference stores them). */
  private readonly sigmas: number[];
  private readonly history: Float64Array[] = [];
  private index = 0;
  private lowerOrderNums = 0;
  private lastSample: Float64Array | null = null;
  private thisOrder = 1;

  constructor(
    readonly kind: MultistepKind,
    readonly config: SchedulerConfig,
    steps: number,
  ) {
    this.timesteps = multistepTimesteps(config, steps);
    const ac = alphasCumprodFor(config);
    this.sigmas = [...this.timesteps.map((t) => f32(Math.sqrt(f32(f32(1 - ac[t]!) / ac[t]!)))), 0];
  }

  private at(i: number): Scalars {
    const s = this.sigmas[i]!;
    const alpha = f32(1 / f32(Math.sqrt(f32(f32(s * s) + 1))));
    const sigma = f32(s * alpha);
    return { alpha, sigma, lambda: f32(f32(Math.log(alpha)) - f32(Math.log(sigma))) };
  }

  /** One step from `timesteps[i]` to the next; returns the new sample and this step's x̂₀. */
  step(modelOutput: ArrayLike<number>, sample: ArrayLike<number>): MultistepResult {
    const i = this.index;
    if (i >= this.timesteps.length) throw new Error('MultistepSampler: every timestep has been stepped');
    const n = sample.length;
    if (modelOutput.length !== n) {
      throw new Error(`MultistepSampler: model output has ${modelOutput.length} values, sample ${n}`);
    }
    const { alpha, sigma } = this.at(i);
    const x0 = new Float64Array(n);
    if (this.config.predictionType === 'v_prediction') {
      for (let k = 0; k < n; k++) x0[k] = alpha * sample[k]! - sigma * modelOutput[k]!;
    } else {
      for (let k = 0; k < n; k++) x0[k] = (sample[k]! - sigma * modelOutput[k]!) / alpha;
    }
    const prev = this.kind === 'dpmpp2m' ? this.dpmStep(x0, sample) : this.uniPcStep(x0, sample);
    this.index++;
    return { prevSample: prev, predOriginalSample: x0 };
  }

  private dpmStep(x0: Float64Array, sample: ArrayLike<number>): Float64Array {
    const i = this.index;
    const last = i === this.timesteps.length - 1; // final_sigmas_type zero: the last step is always first order
    this.history.push(x0);
    if (this.history.length > 2) this.history.shift();
    const t = this.at(i + 1), s0 = this.at(i);
    const ratio = f32(t.sigma / s0.sigma);
    const h = f32(t.lambda - s0.lambda);
    const c = f32(t.alpha * f32(f32(Math.exp(-h)) - 1));
    const out = new Float64Array(sample.length);
    if (this.lowerOrderNums < 1 || last) {
      for (let k = 0; k < out.length; k++) out[k] = ratio * f32(sample[k]!) - c * x0[k]!;
    } else {
      // Midpoint second order: D0 = m0, D1 = (m0 − m1)/r0 with r0 = h₀/h.
      const s1 = this.at(i - 1);
      const r0 = f32(f32(s0.lambda - s1.lambda) / h);
      const m1 = this.history[0]!;
      for (let k = 0; k < out.length; k++) {
        const d1 = (1 / r0) * (x0[k]! - m1[k]!);
        out[k] = ratio * f32(sample[k]!) - c * x0[k]! - 0.5 * c * d1;
      }
    }
    if (this.lowerOrderNums < 2) this.lowerOrderNums++;
    return out;
  }

  private uniPcStep(x0: Float64Array, input: ArrayLike<number>): Float64Array {
    const i = this.index;
    let sample: Float64Array = Float64Array.from(input);
    // UniC: correct this step's sample with the model output at it, using the previous predictor's order.
    if (i > 0 && this.lastSample) sample = this.uniC(x0, this.lastSample, this.thisOrder);
    this.history.push(x0);
    if (this.history.length > 2) this.history.shift();
    this.thisOrder = Math.min(2, this.timesteps.length - i, this.lowerOrderNums + 1);
    this.lastSample = sample;
    const prev = this.uniP(sample, this.thisOrder);
    if (this.lowerOrderNums < 2) this.lowerOrderNums++;
    return prev;
  }

  /** hh = −h, h·φ₁ = e^{hh} − 1 and B(h) = e^{hh} − 1 (bh2), and the b vector of the order-p system. */
  private static coefficients(h: number, order: number): { hPhi1: number; bh: number; b: number[] } {
    const hh = f32(-h);
    const hPhi1 = f32(Math.expm1(hh));
    let hPhiK = f32(f32(hPhi1 / hh) - 1);
    const bh = hPhi1;
    const b: number[] = [];
    let factorial = 1;
    for (let k = 1; k <= order; k++) {
      b.push(f32(f32(hPhiK * factorial) / bh));
      factorial *= k + 1;
      hPhiK = f32(f32(hPhiK / hh) - f32(1 / factorial));
    }
    return { hPhi1, bh, b };
  }

  private uniP(x: Float64Array, order: number): Float64Array {
    const i = this.index;
    const t = this.at(i + 1), s0 = this.at(i);
    const h = f32(t.lambda - s0.lambda);
    const m0 = this.history[this.history.length - 1]!;
    const { hPhi1, bh } = MultistepSampler.coefficients(h, order);
    const ratio = f32(t.sigma / s0.sigma);
    const out = new Float64Array(x.length);
    let d1: ((k: number) => number) | null = null;
    if (order === 2) {
      // The reference's simplified order 2: ρ = ½ on D1 = (m1 − m0)/r1, r1 = (λ_{s1} − λ_{s0})/h.
      const rk = f32(f32(this.at(i - 1).lambda - s0.lambda) / h);
      const m1 = this.history[0]!;
      d1 = (k) => 0.5 * ((m1[k]! - m0[k]!) / rk);
    }
    for (let k = 0; k < x.length; k++) {
      out[k] = ratio * x[k]! - t.alpha * hPhi1 * m0[k]! - (d1 ? t.alpha * bh * d1(k) : 0);
    }
    return out;
  }

  private uniC(modelT: Float64Array, x: Float64Array, order: number): Float64Array {
    const i = this.index;
    const t = this.at(i), s0 = this.at(i - 1);
    const h = f32(t.lambda - s0.lambda);
    const m0 = this.history[this.history.length - 1]!;
    const { hPhi1, bh, b } = MultistepSampler.coefficients(h, order);
    const ratio = f32(t.sigma / s0.sigma);
    let rhoLast = 0.5;
    let corr: ((k: number) => number) | null = null;
    if (order === 2) {
      const rk = f32(f32(this.at(i - 2).lambda - s0.lambda) / h);
      // R = [[1, 1], [rk, 1]] (rows: powers 0 and 1 of [rk, 1]); R·ρ = b.
      const det = 1 - rk;
      const rho0 = (b[0]! - b[1]!) / det, rho1 = (b[1]! - rk * b[0]!) / det;
      rhoLast = rho1;
      const m1 = this.history[0]!;
      corr = (k) => rho0 * ((m1[k]! - m0[k]!) / rk);
    }
    const out = new Float64Array(x.length);
    for (let k = 0; k < x.length; k++) {
      const base = ratio * x[k]! - t.alpha * hPhi1 * m0[k]!;
      out[k] = base - t.alpha * bh * ((corr ? corr(k) : 0) + rhoLast * (modelT[k]! - m0[k]!));
    }
    return out;
  }
}
