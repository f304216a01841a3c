/**
 * FaceLift's Gaussian clean-up (spec pipeline.md §6.1, `GaussianModel.apply_all_filters`), applied in this order:
 *  1. opacity: keep sigmoid(logit) > opacityThreshold;
 *  2. scale: keep max(exp(log-scale)) < scalingThreshold, or z > 0 (above the z = 0 plane size never prunes);
 *  3. corner floaters: remove |x| > floaterThreshold and |y| > floaterThreshold and z < −floaterThreshold;
 *  4. crop box: keep xmin ≤ x ≤ xmax, ymin ≤ y ≤ ymax, zmin ≤ z ≤ zmax.
 * (The near/far percentile prune is skipped in FaceLift: no camera origins are passed.) Strict vs inclusive
 * comparisons follow the spec's wording: "> thr" / "< thr" as written, and the box is inclusive ("outside [a, b]"
 * is removed). Thresholds are rounded to float32 before comparing, as PyTorch compares a float32 tensor with a
 * Python scalar, so a coordinate stored as float32(0.91) is inside the box.
 */
import { allocGaussians, shCoeffs, type GaussianSet } from './gaussians.ts';

export interface FilterOptions {
  opacityThreshold: number;
  scalingThreshold: number;
  floaterThreshold: number;
  /** [xmin, xmax, ymin, ymax, zmin, zmax] */
  cropBox: readonly [number, number, number, number, number, number];
}

/** inference.py's arguments. */
export const FACELIFT_FILTERS: FilterOptions = {
  opacityThreshold: 0.04, scalingThreshold: 0.1, floaterThreshold: 0.6, cropBox: [-0.91, 0.91, -0.91, 0.91, -1.0, 1.0],
};

/** gradio_app.py's arguments (larger scale and floater thresholds). */
export const GRADIO_FILTERS: FilterOptions = { ...FACELIFT_FILTERS, scalingThreshold: 0.2, floaterThreshold: 0.75 };

export interface FilterReport {
  kept: number;
  /** Gaussians removed by each rule, in order (a Gaussian counts for the first rule that removes it). */
  removed: { opacity: number; scale: number; floater: number; box: number };
}

/** Which rule (0 = kept, 1..4 = the rule above) removes Gaussian i. */
export function filterRule(g: GaussianSet, i: number, o: FilterOptions = FACELIFT_FILTERS): number {
  const f32 = Math.fround;
  const opacity = f32(1 / (1 + Math.exp(-g.opacities[i])));
  if (!(opacity > f32(o.opacityThreshold))) return 1;
  const x = g.means[3 * i], y = g.means[3 * i + 1], z = g.means[3 * i + 2];
  const maxScale = f32(Math.exp(Math.max(g.scales[3 * i], g.scales[3 * i + 1], g.scales[3 * i + 2])));
  if (!(maxScale < f32(o.scalingThreshold) || z > 0)) return 2;
  const f = f32(o.floaterThreshold);
  if (Math.abs(x) > f && Math.abs(y) > f && z < -f) return 3;
  const [x0, x1, y0, y1, z0, z1] = o.cropBox.map(f32);
  if (!(x >= x0 && x <= x1 && y >= y0 && y <= y1 && z >= z0 && z <= z1)) return 4;
  return 0;
}

/** A new set with the Gaussians that pass all four rules (order kept), and how many each rule removed. */
export function filterGaussians(g: GaussianSet, opts: Partial<FilterOptions> = {}): { gaussians: GaussianSet; report: FilterReport } {
  const o: FilterOptions = { ...FACELIFT_FILTERS, ...opts };
  const removed = { opacity: 0, scale: 0, floater: 0, box: 0 };
  const keys = ['', 'opacity', 'scale', 'floater', 'box'] as const;
  const keep: number[] = [];
  for (let i = 0; i < g.count; i++) {
    const r = filterRule(g, i, o);
    if (r === 0) keep.push(i);
    else removed[keys[r] as keyof typeof removed]++;
  }
  return { gaussians: selectGaussians(g, keep), report: { kept: keep.length, removed } };
}

/** The Gaussians at `indices`, in that order. */
export function selectGaussians(g: GaussianSet, indices: readonly number[]): GaussianSet {
  const out = allocGaussians(indices.length, g.shDegree);
  const S = 3 * shCoeffs(g.shDegree);
  indices.forEach((i, j) => {
    out.means.set(g.means.subarray(3 * i, 3 * i + 3), 3 * j);
    out.scales.set(g.scales.subarray(3 * i, 3 * i + 3), 3 * j);
    out.rotations.set(g.rotations.subarray(4 * i, 4 * i + 4), 4 * j);
    out.opacities[j] = g.opacities[i];
    out.sh.set(g.sh.subarray(S * i, S * i + S), S * j);
  });
  return out;
}
