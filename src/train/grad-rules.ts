/**
 * The reference's per-update gradient rules (spec gslrm.md §8): `nan_to_num` (NaN → 0, ±Inf → ±1e-3 as the
 * reference calls it), the global L2 norm before clipping, clipping to `maxNorm`, and the skip rule for updates
 * whose norm exceeds `maxNorm · allowedFactor`.
 */

/** In place: NaN → 0, +Inf → 1e-3, −Inf → −1e-3. Returns how many values were replaced. */
export function nanToNum(grads: Iterable<Float32Array>): number {
  let n = 0;
  for (const g of grads) {
    for (let i = 0; i < g.length; i++) {
      const x = g[i]!;
      if (Number.isFinite(x)) continue;
      g[i] = Number.isNaN(x) ? 0 : x > 0 ? 1e-3 : -1e-3;
      n++;
    }
  }
  return n;
}

/** Global L2 norm (accumulated in float64, in a fixed order, so it is reproducible). */
export function globalNorm(grads: Iterable<Float32Array>): number {
  let sq = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) sq += g[i]! * g[i]!;
  return Math.sqrt(sq);
}

/** torch.nn.utils.clip_grad_norm_: scale by maxNorm / (norm + 1e-6) when that is below 1. */
export function clipToNorm(grads: Iterable<Float32Array>, norm: number, maxNorm: number): void {
  const coef = maxNorm / (norm + 1e-6);
  if (coef >= 1) return;
  for (const g of grads) for (let i = 0; i < g.length; i++) g[i]! *= coef;
}
