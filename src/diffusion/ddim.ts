/**
 * DDIM sampler maths (Song et al. 2021) as pure functions, matching diffusers 0.30's `DDIMScheduler` configured
 * as FaceLift uses it (spec mvdiffusion.md §8): leading spacing, steps_offset 1, set_alpha_to_one false,
 * v-prediction, η = 1.0, no clipping.
 *
 * Arithmetic is emulated in float32 (Math.fround after every operation, scalars included) so that the results
 * follow the float32 reference rather than a float64 re-derivation of it.
 */
import { UserError } from '../util/errors.ts';
import { alphasCumprodFor, type SchedulerConfig } from './noise-schedule.ts';

const f32 = Math.fround;

export interface DdimSchedule {
  config: SchedulerConfig;
  /** ᾱ_t, float32, one per training timestep. */
  alphasCumprod: Float32Array;
  /** ᾱ after the last step: 1 if set_alpha_to_one, else ᾱ₀. */
  finalAlphaCumprod: number;
}

export function ddimSchedule(config: SchedulerConfig): DdimSchedule {
  const alphasCumprod = alphasCumprodFor(config);
  return { config, alphasCumprod, finalAlphaCumprod: config.setAlphaToOne ? 1 : alphasCumprod[0] };
}

/** The timesteps of a sampling run, highest first (`set_timesteps`): 50 steps → 981, 961, …, 1. */
export function ddimTimesteps(s: DdimSchedule, numSteps: number): number[] {
  const n = s.config.numTrainTimesteps;
  if (!Number.isInteger(numSteps) || numSteps < 1 || numSteps > n) {
    throw new UserError(`the number of sampling steps must be an integer from 1 to ${n}, got ${numSteps}`);
  }
  let ts: number[];
  switch (s.config.timestepSpacing) {
    case 'leading': {
      const ratio = Math.floor(n / numSteps);
      ts = Array.from({ length: numSteps }, (_, i) => i * ratio + s.config.stepsOffset).reverse();
      break;
    }
    case 'trailing': {
      const ratio = n / numSteps;
      ts = Array.from({ length: numSteps }, (_, i) => Math.round(n - i * ratio) - 1);
      break;
    }
    case 'linspace': {
      const step = (n - 1) / (numSteps - 1 || 1);
      ts = Array.from({ length: numSteps }, (_, i) => Math.round(i * step)).reverse();
      break;
    }
  }
  return ts;
}

/** The scalars of one DDIM step t → t − n/steps, in float32 as the reference computes them. */
export interface DdimStepScalars {
  t: number;
  prevT: number;
  alphaProdT: number;
  alphaProdPrev: number;
  /** σ_t = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_prev). */
  stdDev: number;
}

export function ddimStepScalars(s: DdimSchedule, t: number, numSteps: number, eta: number): DdimStepScalars {
  const prevT = t - Math.floor(s.config.numTrainTimesteps / numSteps);
  const a = s.alphasCumprod[t];
  if (a === undefined) throw new UserError(`timestep ${t} is outside the scheduler's 0…${s.config.numTrainTimesteps - 1}`);
  const ap = prevT >= 0 ? s.alphasCumprod[prevT] : s.finalAlphaCumprod;
  const b = f32(1 - a);
  const bp = f32(1 - ap);
  const variance = f32(f32(bp / b) * f32(1 - f32(a / ap)));
  return { t, prevT, alphaProdT: a, alphaProdPrev: ap, stdDev: f32(eta * f32(Math.sqrt(variance))) };
}

export interface DdimStepResult {
  prevSample: Float32Array;
  predOriginalSample: Float32Array;
}

/**
 * One DDIM step: x̂₀ and ε̂ from the model output (v or ε), then
 * x_prev = √ᾱ_prev·x̂₀ + √(1−ᾱ_prev−σ²)·ε̂ + σ·z. `noise` (z) is required when σ > 0 and ignored otherwise.
 */
export function ddimStep(
  s: DdimSchedule,
  sc: DdimStepScalars,
  modelOutput: Float32Array,
  sample: Float32Array,
  noise?: Float32Array,
): DdimStepResult {
  const n = sample.length;
  if (modelOutput.length !== n) throw new Error(`ddimStep: model output has ${modelOutput.length} values, sample ${n}`);
  if (sc.stdDev > 0 && (!noise || noise.length !== n)) throw new Error('ddimStep: η > 0 needs a noise tensor of the sample size');
  const sa = f32(Math.sqrt(sc.alphaProdT));
  const sb = f32(Math.sqrt(f32(1 - sc.alphaProdT)));
  const sap = f32(Math.sqrt(sc.alphaProdPrev));
  const dirCoef = f32(Math.sqrt(f32(f32(1 - sc.alphaProdPrev) - f32(sc.stdDev * sc.stdDev))));
  const v = s.config.predictionType === 'v_prediction';
  const prev = new Float32Array(n);
  const x0 = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const m = modelOutput[i];
    const x = sample[i];
    let predX0: number;
    let predEps: number;
    if (v) {
      predX0 = f32(f32(sa * x) - f32(sb * m));
      predEps = f32(f32(sa * m) + f32(sb * x));
    } else {
      predX0 = f32(f32(x - f32(sb * m)) / sa);
      predEps = m;
    }
    x0[i] = predX0;
    let p = f32(f32(sap * predX0) + f32(dirCoef * predEps));
    if (sc.stdDev > 0) p = f32(p + f32(sc.stdDev * noise![i]));
    prev[i] = p;
  }
  return { prevSample: prev, predOriginalSample: x0 };
}

/** Forward process q(x_t | x₀) for one batch item: √ᾱ_t·x₀ + √(1−ᾱ_t)·ε. */
export function addNoise(alphasCumprod: Float32Array, x0: Float32Array, noise: Float32Array, t: number): Float32Array {
  const a = alphasCumprod[t];
  const sa = f32(Math.sqrt(a));
  const sb = f32(Math.sqrt(f32(1 - a)));
  return Float32Array.from(x0, (x, i) => f32(f32(sa * x) + f32(sb * noise[i])));
}

/** The v-prediction training target: √ᾱ_t·ε − √(1−ᾱ_t)·x₀. */
export function velocity(alphasCumprod: Float32Array, x0: Float32Array, noise: Float32Array, t: number): Float32Array {
  const a = alphasCumprod[t];
  const sa = f32(Math.sqrt(a));
  const sb = f32(Math.sqrt(f32(1 - a)));
  return Float32Array.from(x0, (x, i) => f32(f32(sa * noise[i]) - f32(sb * x)));
}

/** Classifier-free guidance: u + s·(c − u), element-wise. */
export function guide(uncond: Float32Array, cond: Float32Array, scale: number): Float32Array {
  if (uncond.length !== cond.length) throw new Error('guide: halves differ in size');
  return Float32Array.from(uncond, (u, i) => f32(u + f32(scale * f32(cond[i] - u))));
}
