/**
 * The reference's per-update gradient rules (spec gslrm.md §8): `nan_to_num` (NaN → 0, ±Inf → ±1e-3 as the
 * reference calls it), the global L2 norm before clipping, clipping to `maxNorm`, and the skip rule for updates
 * whose norm exceeds `maxNorm · allowedFactor`. The loops over values are fused into the optimizer's passes
 * (optim/kernels.ts: `cleanAndSumSquares`, AdamW's `gradScale`); this holds the scalar rule.
 */

/** The factor clip_grad_norm_ multiplies the gradients by: maxNorm / (norm + 1e-6), or 1 when that is ≥ 1. */
export function clipFactor(norm: number, maxNorm: number): number {
  const coef = maxNorm / (norm + 1e-6);
  return coef < 1 ? coef : 1;
}
