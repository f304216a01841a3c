/**
 * View-dependent colour from spherical harmonics, as the graphdeco 3DGS rasterizer evaluates it:
 * colour = max(0, Σ_k B_k(dir)·sh_k + 0.5) per channel, dir = normalize(mean − camera centre).
 * Degree 0 is just 0.28209479·dc + 0.5 (no direction needed).
 */
import { SH_C0 } from './gaussians.ts';

const C1 = 0.4886025119029199;
const C2 = [1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396];
const C3 = [
  -0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
  1.445305721320277, -0.5900435899266435,
];

/** The SH basis B_k(x, y, z) for k < K into `out` (unit direction). */
export function shBasis(K: number, x: number, y: number, z: number, out: Float64Array): void {
  out[0] = SH_C0;
  if (K <= 1) return;
  out[1] = -C1 * y;
  out[2] = C1 * z;
  out[3] = -C1 * x;
  if (K <= 4) return;
  const xx = x * x, yy = y * y, zz = z * z;
  out[4] = C2[0] * x * y;
  out[5] = C2[1] * y * z;
  out[6] = C2[2] * (2 * zz - xx - yy);
  out[7] = C2[3] * x * z;
  out[8] = C2[4] * (xx - yy);
  if (K <= 9) return;
  out[9] = C3[0] * y * (3 * xx - yy);
  out[10] = C3[1] * x * y * z;
  out[11] = C3[2] * y * (4 * zz - xx - yy);
  out[12] = C3[3] * z * (2 * zz - 3 * xx - 3 * yy);
  out[13] = C3[4] * x * (4 * zz - xx - yy);
  out[14] = C3[5] * z * (xx - yy);
  out[15] = C3[6] * x * (xx - 3 * yy);
}

/**
 * Partial derivatives of the basis w.r.t. the (unit) direction components, for k < K:
 * `dx[k] = ∂B_k/∂x` etc. Used to carry colour gradients into the Gaussian means for degree ≥ 1.
 */
export function shBasisGrad(K: number, x: number, y: number, z: number, dx: Float64Array, dy: Float64Array, dz: Float64Array): void {
  dx[0] = dy[0] = dz[0] = 0;
  if (K <= 1) return;
  dx[1] = 0; dy[1] = -C1; dz[1] = 0;
  dx[2] = 0; dy[2] = 0; dz[2] = C1;
  dx[3] = -C1; dy[3] = 0; dz[3] = 0;
  if (K <= 4) return;
  const xx = x * x, yy = y * y, zz = z * z;
  dx[4] = C2[0] * y; dy[4] = C2[0] * x; dz[4] = 0;
  dx[5] = 0; dy[5] = C2[1] * z; dz[5] = C2[1] * y;
  dx[6] = -2 * C2[2] * x; dy[6] = -2 * C2[2] * y; dz[6] = 4 * C2[2] * z;
  dx[7] = C2[3] * z; dy[7] = 0; dz[7] = C2[3] * x;
  dx[8] = 2 * C2[4] * x; dy[8] = -2 * C2[4] * y; dz[8] = 0;
  if (K <= 9) return;
  dx[9] = C3[0] * 6 * x * y; dy[9] = C3[0] * (3 * xx - 3 * yy); dz[9] = 0;
  dx[10] = C3[1] * y * z; dy[10] = C3[1] * x * z; dz[10] = C3[1] * x * y;
  dx[11] = C3[2] * -2 * x * y; dy[11] = C3[2] * (4 * zz - xx - 3 * yy); dz[11] = C3[2] * 8 * y * z;
  dx[12] = C3[3] * -6 * x * z; dy[12] = C3[3] * -6 * y * z; dz[12] = C3[3] * (6 * zz - 3 * xx - 3 * yy);
  dx[13] = C3[4] * (4 * zz - 3 * xx - yy); dy[13] = C3[4] * -2 * x * y; dz[13] = C3[4] * 8 * x * z;
  dx[14] = C3[5] * 2 * x * z; dy[14] = C3[5] * -2 * y * z; dz[14] = C3[5] * (xx - yy);
  dx[15] = C3[6] * (3 * xx - 3 * yy); dy[15] = C3[6] * -6 * x * y; dz[15] = 0;
}
