/**
 * The UNet's class label: the CLIP image embedding after unCLIP's noise augmentation at noise level 0, followed
 * by the sinusoidal embedding of that noise level (spec mvdiffusion.md §4.2, pipeline-tiny README §4.3 step 3):
 *
 *   s = (e − μ)/σ                  (image_normalizer's learned μ, σ)
 *   n = √ᾱ₀·s + √(1−ᾱ₀)·ε          (image_noising_scheduler at t = 0; ε ~ N(0, I), always drawn)
 *   label = [ n·σ + μ ‖ timestep_embedding(0, d) ]   (d ones then d zeros for cos-first order)
 *
 * In float32 √(1−ᾱ₀) ≈ 0.0064, so ε matters (the fp16 reference app rounds it away; the fp32 golden keeps it).
 */
import { alphasCumprodFor, type SchedulerConfig } from './noise-schedule.ts';

const f32 = Math.fround;

export interface TimestepEmbeddingOptions {
  flipSinToCos: boolean;
  downscaleFreqShift: number;
  maxPeriod?: number;
}

/**
 * diffusers' `get_timestep_embedding` in float32: f_i = exp(−ln(P)·i/(half − shift)), emb = [sin(t f), cos(t f)]
 * (or [cos, sin] when flipSinToCos). Returns [timesteps.length, dim] row-major.
 */
export function timestepEmbedding(timesteps: readonly number[], dim: number, opts: TimestepEmbeddingOptions): Float32Array {
  const half = Math.floor(dim / 2);
  const lnP = f32(-Math.log(opts.maxPeriod ?? 10000));
  const freqs = Array.from({ length: half }, (_, i) => f32(Math.exp(f32(f32(lnP * i) / (half - opts.downscaleFreqShift)))));
  const out = new Float32Array(timesteps.length * dim);
  timesteps.forEach((t, r) => {
    const row = out.subarray(r * dim, (r + 1) * dim);
    for (let i = 0; i < half; i++) {
      const x = f32(f32(t) * freqs[i]);
      const s = Math.sin(x);
      const c = Math.cos(x);
      row[i] = opts.flipSinToCos ? c : s;
      row[half + i] = opts.flipSinToCos ? s : c;
    }
    // An odd dim is zero-padded at the end, as in diffusers.
  });
  return out;
}

/** √ᾱ₀ and √(1−ᾱ₀) of the image-noising scheduler, in float32 as its `add_noise` computes them. */
export interface NoiseLevelZero {
  sqrtAlpha: number;
  sqrtOneMinusAlpha: number;
}

export function noiseLevelZero(noisingScheduler: SchedulerConfig): NoiseLevelZero {
  const a0 = alphasCumprodFor(noisingScheduler)[0];
  return { sqrtAlpha: f32(Math.sqrt(a0)), sqrtOneMinusAlpha: f32(Math.sqrt(f32(1 - a0))) };
}

/** The stages of the augmentation, each [n, d]; `label` is [n, 2d]. */
export interface ClassLabel {
  scaled: Float32Array;
  noised: Float32Array;
  augmented: Float32Array;
  label: Float32Array;
}

/**
 * Builds the class label from CLIP embeddings `embeds` [n, d] with the normaliser's `mean`, `std` [d] and the
 * noise `eps` [n, d] (a draw at site "image_embeds").
 */
export function imageClassLabel(
  embeds: Float32Array,
  d: number,
  normalizer: { mean: Float32Array; std: Float32Array },
  level0: NoiseLevelZero,
  eps: Float32Array,
): ClassLabel {
  const n = embeds.length / d;
  if (!Number.isInteger(n) || eps.length !== embeds.length) throw new Error(`imageClassLabel: embeddings (${embeds.length}) and noise (${eps.length}) must both be [n, ${d}]`);
  if (normalizer.mean.length !== d || normalizer.std.length !== d) {
    throw new Error(`imageClassLabel: image_normalizer has ${normalizer.mean.length} dims, the CLIP embedding ${d}`);
  }
  const scaled = new Float32Array(n * d);
  const noised = new Float32Array(n * d);
  const augmented = new Float32Array(n * d);
  const label = new Float32Array(n * 2 * d);
  const level = timestepEmbedding([0], d, { flipSinToCos: true, downscaleFreqShift: 0 });
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < d; j++) {
      const i = r * d + j;
      const mu = normalizer.mean[j];
      const sd = normalizer.std[j];
      scaled[i] = f32(f32(embeds[i] - mu) / sd);
      noised[i] = f32(f32(level0.sqrtAlpha * scaled[i]) + f32(level0.sqrtOneMinusAlpha * eps[i]));
      augmented[i] = f32(f32(noised[i] * sd) + mu);
    }
    label.set(augmented.subarray(r * d, (r + 1) * d), r * 2 * d);
    label.set(level, r * 2 * d + d);
  }
  return { scaled, noised, augmented, label };
}
