/**
 * Noise schedules of the two schedulers in `pipeckpts/`: `scheduler/` (DDIMScheduler, the sampler) and
 * `image_noising_scheduler/` (DDPMScheduler, only its ᾱ₀ is used to perturb the CLIP embedding).
 *
 * Tables are float32, computed the way diffusers 0.30 does (betas in float32, cumulative product accumulated in
 * float64 and stored as float32, as torch's CPU cumprod does), because the reference runs in float32.
 */
import { UserError } from '../util/errors.ts';
import { JsonFields } from './json-fields.ts';

const f32 = Math.fround;

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';

/** Fields shared by DDIMScheduler and DDPMScheduler configs (`scheduler_config.json`). */
export interface SchedulerConfig {
  className: 'DDIMScheduler' | 'DDPMScheduler';
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: BetaSchedule;
  predictionType: 'epsilon' | 'v_prediction';
  timestepSpacing: 'leading' | 'trailing' | 'linspace';
  stepsOffset: number;
  /** DDIM only: ᾱ used after the last step (true → 1, false → ᾱ₀). */
  setAlphaToOne: boolean;
}

export function parseSchedulerConfig(f: JsonFields): SchedulerConfig {
  const className = f.oneOf('_class_name', ['DDIMScheduler', 'DDPMScheduler']);
  f.fixed('trained_betas', null);
  f.fixed('rescale_betas_zero_snr', false);
  f.fixed('thresholding', false);
  if (className === 'DDIMScheduler') f.fixed('clip_sample', false);
  return {
    className,
    numTrainTimesteps: f.int('num_train_timesteps'),
    betaStart: f.num('beta_start'),
    betaEnd: f.num('beta_end'),
    betaSchedule: f.oneOf('beta_schedule', ['linear', 'scaled_linear', 'squaredcos_cap_v2']),
    predictionType: f.oneOf('prediction_type', ['epsilon', 'v_prediction']),
    timestepSpacing: f.oneOf('timestep_spacing', ['leading', 'trailing', 'linspace'], 'leading'),
    stepsOffset: f.int('steps_offset', 0, 0),
    setAlphaToOne: className === 'DDIMScheduler' ? f.bool('set_alpha_to_one') : true,
  };
}

/** torch.linspace(start, end, n) in float64 (its float32 result is rounded per element by the caller). */
function linspace(start: number, end: number, n: number): number[] {
  if (n === 1) return [start];
  const step = (end - start) / (n - 1);
  // torch fills the first half from `start` and the second half from `end`; mirrored the same way here.
  return Array.from({ length: n }, (_, i) => (i < n / 2 ? start + step * i : end - step * (n - 1 - i)));
}

/** β_t as float32, per diffusers' `beta_schedule`. */
export function betas(cfg: Pick<SchedulerConfig, 'numTrainTimesteps' | 'betaStart' | 'betaEnd' | 'betaSchedule'>): Float32Array {
  const n = cfg.numTrainTimesteps;
  switch (cfg.betaSchedule) {
    case 'linear':
      return Float32Array.from(linspace(cfg.betaStart, cfg.betaEnd, n));
    case 'scaled_linear': {
      // linspace(√β₀, √β₁) in float32, then squared in float32.
      const roots = linspace(Math.sqrt(cfg.betaStart), Math.sqrt(cfg.betaEnd), n).map(f32);
      return Float32Array.from(roots, (r) => f32(r * r));
    }
    case 'squaredcos_cap_v2': {
      // Nichol & Dhariwal's cosine ᾱ(t), betas in float64 capped at 0.999, then stored as float32.
      const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
      return Float32Array.from({ length: n }, (_, i) => Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999));
    }
  }
}

/** ᾱ_t = Π(1 − β) as float32. */
export function alphasCumprod(b: Float32Array): Float32Array {
  const out = new Float32Array(b.length);
  let acc = 1;
  for (let i = 0; i < b.length; i++) {
    acc *= f32(1 - b[i]);
    out[i] = acc;
  }
  return out;
}

/** A scheduler config's ᾱ table. */
export function alphasCumprodFor(cfg: SchedulerConfig): Float32Array {
  return alphasCumprod(betas(cfg));
}

/** Reads and checks `<component>/scheduler_config.json`. */
export function readSchedulerConfig(path: string, label: string, expectClass: SchedulerConfig['className']): SchedulerConfig {
  const cfg = parseSchedulerConfig(JsonFields.fromFile(path, label));
  if (cfg.className !== expectClass) throw new UserError(`${label}: expected a ${expectClass} config, found ${cfg.className}`);
  return cfg;
}
