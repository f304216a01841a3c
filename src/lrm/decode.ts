/**
 * Gaussian parameter decoding with hard pixel alignment (spec gslrm.md §4, `GaussiansUpsampler.to_gs` and the
 * `hard_pixelalign` + `use_custom_plucker` branch). Raw 14-vectors `xyz 3 | SH-DC 3 | scale 3 | rotation 4 |
 * opacity 1` become a GaussianSet in the stored parameterisation (log-scales, opacity logits, raw quaternions).
 */
import { allocGaussians, type GaussianSet } from '../splat/gaussians.ts';
import type { Rays } from './rays.ts';
import { pixelGaussianOrder } from './tokens.ts';

/** Raw values per Gaussian at SH degree 0. */
export const GAUSSIAN_DIM = 14;
/** Depth range around the point nearest the origin: t ∈ (−o·d) ± 1.8. */
export const PIXELALIGN_HALF_RANGE = 1.8;
const SCALE_SHIFT = -2.3;
const SCALE_MAX = -1.2;
const OPACITY_SHIFT = -2.0;

export interface DecodedGaussians {
  /** 2 global Gaussians, then one per input pixel in token order (view, patch row, patch col, py, px). */
  gaussians: GaussianSet;
  /** Ray parameter t of each pixel Gaussian (xyz = o + t·d), in Gaussian order; for diagnostics and tests. */
  pixelT: Float32Array;
}

/**
 * Decodes raw head outputs `[nGlobal + V·H·W, 14]` (global ones first). Global Gaussians keep their raw xyz;
 * each pixel Gaussian is placed on the ray of its own pixel at t = (2·sigmoid(mean(raw xyz)) − 1)·1.8 − o·d.
 * No xyz clamp: the official `clip_xyz` never runs (spec §4.3).
 */
export function decodeGaussians(raw: Float32Array, nGlobal: number, rays: Rays, patch: number): DecodedGaussians {
  const { views: V, height: H, width: W, origins, directions } = rays;
  const nPix = V * H * W;
  const count = nGlobal + nPix;
  if (raw.length !== count * GAUSSIAN_DIM) {
    throw new RangeError(`decodeGaussians: ${raw.length} raw values, expected ${count}×${GAUSSIAN_DIM} for ${nGlobal} global + ${V}×${H}×${W} pixel Gaussians`);
  }
  const g = allocGaussians(count, 0);
  const pixelT = new Float32Array(nPix);
  const plane = H * W;
  for (let i = 0; i < count; i++) {
    const r = i * GAUSSIAN_DIM;
    g.sh[3 * i] = raw[r + 3];
    g.sh[3 * i + 1] = raw[r + 4];
    g.sh[3 * i + 2] = raw[r + 5];
    for (let k = 0; k < 3; k++) g.scales[3 * i + k] = Math.min(raw[r + 6 + k] + SCALE_SHIFT, SCALE_MAX);
    for (let k = 0; k < 4; k++) g.rotations[4 * i + k] = raw[r + 9 + k];
    g.opacities[i] = raw[r + 13] + OPACITY_SHIFT;
    if (i < nGlobal) for (let k = 0; k < 3; k++) g.means[3 * i + k] = raw[r + k];
  }
  const order = pixelGaussianOrder(V, H, W, patch);
  for (let j = 0; j < nPix; j++) {
    const pix = order[j];
    const v = Math.floor(pix / plane);
    const q = v * 3 * plane + (pix - v * plane);
    const dx = directions[q], dy = directions[q + plane], dz = directions[q + 2 * plane];
    const ox = origins[3 * v], oy = origins[3 * v + 1], oz = origins[3 * v + 2];
    const i = nGlobal + j;
    const r = i * GAUSSIAN_DIM;
    const m = (raw[r] + raw[r + 1] + raw[r + 2]) / 3;
    const s = 1 / (1 + Math.exp(-m));
    const t = (2 * s - 1) * PIXELALIGN_HALF_RANGE - (ox * dx + oy * dy + oz * dz);
    pixelT[j] = t;
    g.means[3 * i] = ox + t * dx;
    g.means[3 * i + 1] = oy + t * dy;
    g.means[3 * i + 2] = oz + t * dz;
  }
  return { gaussians: g, pixelT };
}
