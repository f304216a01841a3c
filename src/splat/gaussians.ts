/**
 * A set of 3D Gaussians as structure-of-arrays, in the parameterisation GS-LRM outputs and 3DGS files store
 * (spec gslrm.md §4): log-scales, opacity logits, w-first quaternions (not necessarily normalised), and
 * spherical-harmonic coefficients whose DC term maps to colour as 0.28209479·dc + 0.5.
 */
export interface GaussianSet {
  /** Number of Gaussians. */
  readonly count: number;
  /** Spherical-harmonic degree 0..3; `shCoeffs(shDegree)` coefficients per colour channel. */
  readonly shDegree: number;
  /** xyz, length 3·count. */
  readonly means: Float32Array;
  /** log of the per-axis standard deviations, length 3·count. */
  readonly scales: Float32Array;
  /** quaternion (w, x, y, z), length 4·count. */
  readonly rotations: Float32Array;
  /** opacity logit (opacity = sigmoid(logit)), length count. */
  readonly opacities: Float32Array;
  /**
   * SH coefficients, laid out [count, shCoeffs(shDegree), 3] like PyTorch's features_dc ‖ features_rest:
   * `sh[(i·K + k)·3 + c]` with K = shCoeffs(shDegree); k = 0 is the DC term.
   */
  readonly sh: Float32Array;
}

/** Coefficients per colour channel for an SH degree: (degree + 1)². */
export function shCoeffs(degree: number): number {
  if (!Number.isInteger(degree) || degree < 0 || degree > 3) throw new RangeError(`SH degree must be 0..3, got ${degree}`);
  return (degree + 1) * (degree + 1);
}

/** The zeroth-order SH basis constant, 1/(2·sqrt(π)), as the 3DGS CUDA code writes it. */
export const SH_C0 = 0.28209479177387814;

/** Allocates a zero-filled set (scales, opacities and SH all 0; rotations identity). */
export function allocGaussians(count: number, shDegree = 0): GaussianSet {
  const rotations = new Float32Array(4 * count);
  for (let i = 0; i < count; i++) rotations[4 * i] = 1;
  return {
    count,
    shDegree,
    means: new Float32Array(3 * count),
    scales: new Float32Array(3 * count),
    rotations,
    opacities: new Float32Array(count),
    sh: new Float32Array(count * shCoeffs(shDegree) * 3),
  };
}

/** Checks that every array has the length `count` and `shDegree` imply; throws naming the first that does not. */
export function validateGaussians(g: GaussianSet): void {
  const K = shCoeffs(g.shDegree);
  const want: Array<[string, Float32Array, number]> = [
    ['means', g.means, 3 * g.count],
    ['scales', g.scales, 3 * g.count],
    ['rotations', g.rotations, 4 * g.count],
    ['opacities', g.opacities, g.count],
    ['sh', g.sh, K * 3 * g.count],
  ];
  for (const [name, arr, n] of want) {
    if (arr.length !== n) throw new RangeError(`GaussianSet.${name} has ${arr.length} values, expected ${n} for ${g.count} Gaussians`);
  }
}
