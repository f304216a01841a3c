/** Deterministic synthetic Gaussian scenes for tests and benchmarks (not a head model; see src/synth for that). */
import { allocGaussians, type GaussianSet } from '../gaussians.ts';
import { rng } from '../../core/testing/reference.ts';

export { rng } from '../../core/testing/reference.ts';

/**
 * A head-sized blob: `count` Gaussians, 85 % on the surface of an ellipsoid (semi-axes 0.62, 0.72, 0.85) and the
 * rest inside it, scales 4–20 mm (anisotropic), random rotations, opacity logits in [−3, 5], colours around skin
 * tones; SH degree `shDegree` (higher coefficients small).
 */
export function headScene(count: number, seed = 1, shDegree = 0): GaussianSet {
  const r = rng(seed);
  const g = allocGaussians(count, shDegree);
  const K = (shDegree + 1) ** 2;
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
  for (let i = 0; i < count; i++) {
    let x = gauss(), y = gauss(), z = gauss();
    const n = Math.hypot(x, y, z) || 1;
    const rad = r() < 0.85 ? 1 : Math.cbrt(r());
    x = (x / n) * rad * 0.62; y = (y / n) * rad * 0.72; z = (z / n) * rad * 0.85;
    g.means.set([x, y, z], 3 * i);
    for (let k = 0; k < 3; k++) g.scales[3 * i + k] = Math.log(0.004 + 0.016 * r());
    g.rotations.set([gauss(), gauss(), gauss(), gauss()], 4 * i);
    g.opacities[i] = -3 + 8 * r();
    const base = 3 * K * i;
    g.sh[base] = 1.2 + 0.4 * r(); g.sh[base + 1] = 0.4 + 0.4 * r(); g.sh[base + 2] = 0.1 + 0.4 * r();
    for (let k = 3; k < 3 * K; k++) g.sh[base + k] = 0.1 * gauss();
  }
  return g;
}
