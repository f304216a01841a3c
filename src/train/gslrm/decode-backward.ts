/**
 * The chain rule through GS-LRM's Gaussian decoding (lrm/decode.ts, spec gslrm.md §4): from the gradients of the
 * stored Gaussian parameters (what the rasterizer backward returns) to the gradients of the raw 14-vectors.
 *
 * SH-DC, raw quaternion, opacity logit (a shift) and the global Gaussians' xyz pass straight through; the
 * log-scale `min(raw − 2.3, −1.2)` passes where the clamp is not active (torch's rule: gradient where
 * raw − 2.3 ≤ −1.2); a pixel Gaussian's position o + t·d with t = (2σ(m) − 1)·1.8 − o·d, m = mean of the three raw
 * xyz outputs, gives ∂L/∂raw_k = (∂L/∂xyz · d)·3.6·σ(m)(1 − σ(m))/3 for k = 0, 1, 2.
 */
import type { GaussianGrads } from '../../splat/rasterize.ts';
import { GAUSSIAN_DIM, PIXELALIGN_HALF_RANGE } from '../../lrm/decode.ts';
import type { Rays } from '../../lrm/rays.ts';
import { pixelGaussianOrder } from '../../lrm/tokens.ts';

const SCALE_SHIFT = -2.3;
const SCALE_MAX = -1.2;

export function decodeGaussiansBackward(
  raw: Float32Array,
  nGlobal: number,
  rays: Rays,
  patch: number,
  d: GaussianGrads,
): Float32Array {
  const { views: V, height: H, width: W, directions } = rays;
  const nPix = V * H * W;
  const count = nGlobal + nPix;
  if (raw.length !== count * GAUSSIAN_DIM)
    throw new RangeError(`decodeGaussiansBackward: ${raw.length} raw values for ${count} Gaussians`);
  const out = new Float32Array(raw.length);
  for (let i = 0; i < count; i++) {
    const r = i * GAUSSIAN_DIM;
    for (let c = 0; c < 3; c++) out[r + 3 + c] = d.sh[3 * i + c]!;
    for (let k = 0; k < 3; k++) out[r + 6 + k] = raw[r + 6 + k]! + SCALE_SHIFT <= SCALE_MAX ? d.scales[3 * i + k]! : 0;
    for (let k = 0; k < 4; k++) out[r + 9 + k] = d.rotations[4 * i + k]!;
    out[r + 13] = d.opacities[i]!;
    if (i < nGlobal) for (let k = 0; k < 3; k++) out[r + k] = d.means[3 * i + k]!;
  }
  const order = pixelGaussianOrder(V, H, W, patch);
  const plane = H * W;
  for (let j = 0; j < nPix; j++) {
    const pix = order[j]!;
    const v = Math.floor(pix / plane);
    const q = v * 3 * plane + (pix - v * plane);
    const i = nGlobal + j;
    const r = i * GAUSSIAN_DIM;
    const dt =
      d.means[3 * i]! * directions[q]! +
      d.means[3 * i + 1]! * directions[q + plane]! +
      d.means[3 * i + 2]! * directions[q + 2 * plane]!;
    const m = (raw[r]! + raw[r + 1]! + raw[r + 2]!) / 3;
    const s = 1 / (1 + Math.exp(-m));
    const dm = dt * 2 * PIXELALIGN_HALF_RANGE * s * (1 - s);
    out[r] = out[r + 1] = out[r + 2] = dm / 3;
  }
  return out;
}
