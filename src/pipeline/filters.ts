/**
 * FaceLift's Gaussian clean-up before saving (spec pipeline.md §6.1, `GaussianModel.apply_all_filters` with the
 * `inference.py` arguments), applied in the reference's order. src/splat has no filter module yet, so the pipeline
 * carries this small pure function.
 */
import { allocGaussians, shCoeffs, type GaussianSet } from '../splat/gaussians.ts';

export interface FilterOptions {
  /** Keep sigmoid(opacity) > this. */
  opacityThres: number;
  /** Keep max(exp(log-scale)) < this, or z > 0. */
  scalingThres: number;
  /** Drop Gaussians in the four xy corners (|x|, |y| > this) that are also below z < −this. */
  floaterThres: number;
  /** [xmin, xmax, ymin, ymax, zmin, zmax]: drop anything outside. */
  cropBox: readonly [number, number, number, number, number, number];
}

/** inference.py's arguments. */
export const INFERENCE_FILTER: FilterOptions = Object.freeze({
  opacityThres: 0.04, scalingThres: 0.1, floaterThres: 0.6, cropBox: [-0.91, 0.91, -0.91, 0.91, -1.0, 1.0] as const,
});

/** gradio_app.py's arguments (larger scale and floater limits). */
export const GRADIO_FILTER: FilterOptions = Object.freeze({ ...INFERENCE_FILTER, scalingThres: 0.2, floaterThres: 0.75 });

/** Whether Gaussian i survives all four filters (they are independent per Gaussian, so order does not matter). */
export function keepGaussian(g: GaussianSet, i: number, o: FilterOptions): boolean {
  const op = 1 / (1 + Math.exp(-g.opacities[i]!));
  if (!(op > o.opacityThres)) return false;
  const x = g.means[3 * i]!, y = g.means[3 * i + 1]!, z = g.means[3 * i + 2]!;
  const maxScale = Math.exp(Math.max(g.scales[3 * i]!, g.scales[3 * i + 1]!, g.scales[3 * i + 2]!));
  if (!(maxScale < o.scalingThres || z > 0)) return false;
  const f = o.floaterThres;
  if (Math.abs(x) > f && Math.abs(y) > f && z < -f) return false;
  const [x0, x1, y0, y1, z0, z1] = o.cropBox;
  return x >= x0 && x <= x1 && y >= y0 && y <= y1 && z >= z0 && z <= z1;
}

/** A new set holding the Gaussians that pass, in their original order. */
export function filterGaussians(g: GaussianSet, o: FilterOptions = INFERENCE_FILTER): GaussianSet {
  const keep: number[] = [];
  for (let i = 0; i < g.count; i++) if (keepGaussian(g, i, o)) keep.push(i);
  const out = allocGaussians(keep.length, g.shDegree);
  const K = shCoeffs(g.shDegree) * 3;
  keep.forEach((src, dst) => {
    out.means.set(g.means.subarray(3 * src, 3 * src + 3), 3 * dst);
    out.scales.set(g.scales.subarray(3 * src, 3 * src + 3), 3 * dst);
    out.rotations.set(g.rotations.subarray(4 * src, 4 * src + 4), 4 * dst);
    out.opacities[dst] = g.opacities[src]!;
    out.sh.set(g.sh.subarray(K * src, K * src + K), K * dst);
  });
  return out;
}
