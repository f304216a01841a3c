/**
 * GS-LRM image losses (spec gslrm.md §7) as value-and-gradient functions of the renders, so that their gradients
 * feed the rasterizer backward. Images are planar [V, 3, S, S].
 */

/** mean((render − target)²) over everything; adds `weight`·∂/∂render into `dRender`. */
export function l2Loss(render: Float32Array, target: Float32Array, dRender: Float32Array, weight: number): number {
  if (render.length !== target.length)
    throw new RangeError(`l2Loss: render has ${render.length} values, target ${target.length}`);
  const n = render.length;
  let sum = 0;
  const k = (2 * weight) / n;
  for (let i = 0; i < n; i++) {
    const e = render[i]! - target[i]!;
    sum += e * e;
    dRender[i] += k * e;
  }
  return sum / n;
}

/**
 * The fork's masked L2 (`masked_l2_loss`): squared error summed over pixels whose mask is > 0.5, divided by
 * 3·max(1, their count). Images [V, 3, S, S], mask [V, S, S]; adds `weight`·∂/∂render into `dRender`.
 */
export function maskedL2Loss(
  render: Float32Array,
  target: Float32Array,
  mask: Float32Array,
  size: number,
  dRender: Float32Array,
  weight: number,
): number {
  return maskedSquares(
    render,
    (i) => target[i]!,
    mask,
    size,
    (m) => m > 0.5,
    dRender,
    weight,
  );
}

/**
 * The fork's background loss (`background_loss_weight`): squared error to `color` summed over pixels whose mask
 * is < 0.5, divided by 3·max(1, their count).
 */
export function backgroundLoss(
  render: Float32Array,
  color: readonly number[],
  mask: Float32Array,
  size: number,
  dRender: Float32Array,
  weight: number,
): number {
  const plane = size * size;
  return maskedSquares(
    render,
    (i) => color[Math.floor(i / plane) % 3]!,
    mask,
    size,
    (m) => m < 0.5,
    dRender,
    weight,
  );
}

function maskedSquares(
  render: Float32Array,
  target: (i: number) => number,
  mask: Float32Array,
  size: number,
  keep: (m: number) => boolean,
  dRender: Float32Array,
  weight: number,
): number {
  const plane = size * size,
    V = mask.length / plane;
  let count = 0;
  for (let i = 0; i < mask.length; i++) if (keep(mask[i]!)) count++;
  const denom = 3 * Math.max(1, count);
  let sum = 0;
  for (let v = 0; v < V; v++) {
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < plane; p++) {
        if (!keep(mask[v * plane + p]!)) continue;
        const i = (v * 3 + c) * plane + p;
        const e = render[i]! - target(i);
        sum += e * e;
        dRender[i] += (weight * 2 * e) / denom;
      }
    }
  }
  return sum / denom;
}

/** A loss over whole images computed by a network graph; its weight at each pass comes from `lossWeightsAt`. */
export interface ImageLoss {
  readonly name: 'perceptual' | 'lpips' | 'ssim';
  /** The loss value; adds `weight`·∂loss/∂render into `dRender`. */
  lossAndGrad(
    render: Float32Array,
    target: Float32Array,
    views: number,
    size: number,
    dRender: Float32Array,
    weight: number,
    mask?: Float32Array,
  ): Promise<number>;
  release?(): Promise<void>;
}

/**
 * The points-distance regulariser (spec §7, `_compute_pointsdist_loss`): per input view, the distances
 * r = |xyz − o| of its pixel Gaussians are pulled towards their own standardised values
 * (r − mean)/(std + 1e-8)·0.5 + |o| (mean and unbiased std detached), loss = mean((r − target)²) over all pixels.
 * Adds `weight`·∂loss/∂xyz into `dMeans` (the pixel Gaussians' entries, offset by `nGlobal`).
 * `viewOf[j]` is the view of pixel Gaussian j; `origins` [V, 3].
 */
export function pointsDistLoss(
  means: Float32Array,
  nGlobal: number,
  viewOf: Uint32Array,
  origins: Float64Array,
  views: number,
  dMeans: Float32Array,
  weight: number,
): number {
  const n = viewOf.length;
  const r = new Float64Array(n);
  const sum = new Float64Array(views),
    sq = new Float64Array(views),
    cnt = new Float64Array(views);
  for (let j = 0; j < n; j++) {
    const v = viewOf[j]!,
      i = 3 * (nGlobal + j);
    const dx = means[i]! - origins[3 * v]!,
      dy = means[i + 1]! - origins[3 * v + 1]!,
      dz = means[i + 2]! - origins[3 * v + 2]!;
    r[j] = Math.hypot(dx, dy, dz);
    sum[v] += r[j]!;
    cnt[v]++;
  }
  const mean = sum.map((s, v) => s / cnt[v]!);
  for (let j = 0; j < n; j++) sq[viewOf[j]!] += (r[j]! - mean[viewOf[j]!]!) ** 2;
  const std = sq.map((s, v) => Math.sqrt(s / Math.max(1, cnt[v]! - 1)));
  let loss = 0;
  for (let j = 0; j < n; j++) {
    const v = viewOf[j]!;
    const target =
      ((r[j]! - mean[v]!) / (std[v]! + 1e-8)) * 0.5 +
      Math.hypot(origins[3 * v]!, origins[3 * v + 1]!, origins[3 * v + 2]!);
    const e = r[j]! - target;
    loss += e * e;
    if (r[j]! > 0) {
      const k = (weight * 2 * e) / n / r[j]!;
      const i = 3 * (nGlobal + j);
      dMeans[i] += k * (means[i]! - origins[3 * v]!);
      dMeans[i + 1] += k * (means[i + 1]! - origins[3 * v + 1]!);
      dMeans[i + 2] += k * (means[i + 2]! - origins[3 * v + 2]!);
    }
  }
  return loss / n;
}

/**
 * The pixel-alignment regulariser (spec §7, `_compute_pixelalign_loss`): per pixel Gaussian, the part of xyz − o
 * orthogonal to its ray direction d, with the along-ray length detached — ortho = (xyz − o) − ((xyz − o)·d)·d —
 * loss = mean ‖ortho‖ (× the pixel's mask when `mask` is given). ∂/∂xyz = mask·ortho/‖ortho‖ / n (0 where ‖ortho‖ = 0,
 * as torch's norm backward). With hard pixel alignment xyz lies on the ray, so ortho is float rounding only.
 * `dirOf(j)` gives pixel Gaussian j's unit direction and `viewOf[j]` its view; `mask` is per pixel Gaussian.
 */
export function pixelAlignLoss(
  means: Float32Array, nGlobal: number, viewOf: Uint32Array, origins: Float64Array, dirOf: (j: number) => [number, number, number],
  mask: Float32Array | null, dMeans: Float32Array, weight: number,
): number {
  const n = viewOf.length;
  let loss = 0;
  for (let j = 0; j < n; j++) {
    const v = viewOf[j]!, i = 3 * (nGlobal + j);
    const [dx, dy, dz] = dirOf(j);
    const ax = means[i]! - origins[3 * v]!, ay = means[i + 1]! - origins[3 * v + 1]!, az = means[i + 2]! - origins[3 * v + 2]!;
    const t = ax * dx + ay * dy + az * dz;
    const m = mask ? mask[j]! : 1;
    const ox = (ax - t * dx) * m, oy = (ay - t * dy) * m, oz = (az - t * dz) * m;
    const norm = Math.hypot(ox, oy, oz);
    loss += norm;
    if (norm > 0) {
      const k = (weight * m) / (n * norm);
      dMeans[i] += k * ox;
      dMeans[i + 1] += k * oy;
      dMeans[i + 2] += k * oz;
    }
  }
  return loss / n;
}
