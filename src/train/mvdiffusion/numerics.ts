/**
 * The numerics of one MV-diffusion training step (spec mvdiffusion.md §6), in float32 as the reference computes
 * them: the signal-to-noise ratio of a timestep, min-SNR loss weights, the weighted per-item MSE and the
 * "drop as a whole" condition dropout. Pure functions; the step (step.ts) wires them to the UNet.
 */
const f32 = Math.fround;

/**
 * How min-SNR weights are formed. `reference`: min(SNR, γ)/SNR, what train_diffusion.py computes for every
 * prediction type (the published weights were trained so). `v-corrected`: min(SNR, γ)/(SNR + 1), the form
 * Hang et al. give for v-prediction, whose loss is already (SNR + 1)·‖ε-loss‖.
 */
export type SnrWeighting = 'reference' | 'v-corrected';

/** SNR_t = (√ᾱ_t / √(1 − ᾱ_t))² as the reference's `compute_snr` (each step rounded to float32). */
export function snr(alphasCumprod: Float32Array, t: number): number {
  const a = alphasCumprod[t];
  if (a === undefined) throw new RangeError(`timestep ${t} is outside the schedule (0..${alphasCumprod.length - 1})`);
  const ratio = f32(f32(Math.sqrt(a)) / f32(Math.sqrt(f32(1 - a))));
  return f32(ratio * ratio);
}

/** The loss weight of timestep `t` (null γ: plain MSE, weight 1). */
export function minSnrWeight(alphasCumprod: Float32Array, t: number, gamma: number | null, form: SnrWeighting): number {
  if (gamma === null) return 1;
  const s = snr(alphasCumprod, t);
  const clipped = Math.min(s, f32(gamma));
  return form === 'reference' ? f32(clipped / s) : f32(clipped / f32(s + 1));
}

/**
 * The reference's loss: per item the mean over C·H·W of (pred − target)², times its weight, then the mean over
 * items. Returns the loss and ∂loss/∂pred (for the backward pass), both float32-rounded per item.
 */
export function weightedMse(
  pred: Float32Array,
  target: Float32Array,
  weights: readonly number[],
): { loss: number; grad: Float32Array } {
  const n = weights.length;
  const per = pred.length / n;
  if (!Number.isInteger(per) || target.length !== pred.length)
    throw new Error(`weightedMse: ${pred.length} predictions, ${target.length} targets, ${n} weights`);
  const grad = new Float32Array(pred.length);
  let total = 0;
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let j = i * per; j < (i + 1) * per; j++) {
      const d = pred[j]! - target[j]!;
      sum += d * d;
      grad[j] = (2 * d * weights[i]!) / (per * n);
    }
    total += (sum / per) * weights[i]!;
  }
  return { loss: total / n, grad };
}

/** What "drop as a whole" keeps of one object's conditions (every view of the object alike). */
export interface ConditionKeep {
  /** The CLIP class label (image embedding ‖ noise-level embedding). */
  clip: boolean;
  /** The VAE condition latent. */
  latent: boolean;
}

/**
 * The reference's three cases for one draw p ~ U[0, 1) (float32 compares, as torch does): p < r drops the CLIP
 * label; r ≤ p < 2r drops both; 2r ≤ p < 3r drops the latent; otherwise both stay.
 */
export function dropAsAWhole(p: number, rate: number): ConditionKeep {
  const q = f32(p);
  return { clip: !(q < f32(2 * rate)), latent: !(q >= f32(rate) && q < f32(3 * rate)) };
}

/** diffusers' piecewise-constant schedule: "m1:s1,m2:s2,…,last" → multiplier m_i while step < s_i, then last. */
export function piecewiseConstant(stepRules: string): (step: number) => number {
  const parts = stepRules.split(',').map((s) => s.trim());
  const rules: Array<[number, number]> = [];
  for (const r of parts.slice(0, -1)) {
    const [value, steps] = r.split(':');
    const v = Number(value),
      s = Number(steps);
    if (!Number.isFinite(v) || !Number.isInteger(s))
      throw new Error(`step_rules "${stepRules}": "${r}" is not multiplier:step`);
    rules.push([s, v]);
  }
  const last = Number(parts[parts.length - 1]);
  if (!Number.isFinite(last)) throw new Error(`step_rules "${stepRules}": the last entry must be a multiplier`);
  rules.sort((a, b) => a[0] - b[0]);
  return (step) => {
    for (const [s, v] of rules) if (step < s) return v;
    return last;
  };
}
