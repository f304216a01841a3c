/**
 * Backward of the per-Gaussian preprocessing (project.ts): from ∂L/∂(mean2d, conic, opacity, colour) to
 * ∂L/∂(means, log-scales, raw quaternions, opacity logits, SH coefficients).
 *
 * Exact derivatives of the forward (golden README §3.4): the Jacobian clamp passes no gradient through the clamped
 * ratio, but ∂J/∂Z still sees the 1/Z of the clamped entry; `cudaJacobian` instead reproduces the graphdeco CUDA
 * convention (clamped Xc = lim·Z held constant in ∂J02/∂Z, twice the exact value).
 */
import { NEAR, type CamParams, type GaussianArrays } from './project.ts';
import { shBasis, shBasisGrad } from './sh.ts';

/** Gradients w.r.t. the stored parameters, laid out like the GaussianSet arrays. */
export interface GaussianGrads {
  means: Float32Array;
  scales: Float32Array;
  rotations: Float32Array;
  opacities: Float32Array;
  sh: Float32Array;
}

export function allocGrads(count: number, shDegree: number, shared = false): GaussianGrads {
  const K = (shDegree + 1) * (shDegree + 1);
  const mk = (n: number) => new Float32Array(shared ? new SharedArrayBuffer(4 * n) : new ArrayBuffer(4 * n));
  return { means: mk(3 * count), scales: mk(3 * count), rotations: mk(4 * count), opacities: mk(count), sh: mk(3 * K * count) };
}

/**
 * Writes the parameter gradients of Gaussians [begin, end) into `out`, from `grad2d` (stride 9, see tiles.ts).
 * Gaussians whose 2-D gradient is all zero (culled, or never blended) get zeros.
 */
export function projectBackwardRange(
  g: GaussianArrays, cam: CamParams, grad2d: Float32Array | Float64Array, cudaJacobian: boolean,
  out: GaussianGrads, begin: number, end: number,
): void {
  const { means, scales, rotations, opacities, sh } = g;
  const K = (g.shDegree + 1) * (g.shDegree + 1);
  const basis = new Float64Array(16), bx = new Float64Array(16), by = new Float64Array(16), bz = new Float64Array(16);
  const { fx, fy, R, t, campos } = cam;
  const [r00, r01, r02, r10, r11, r12, r20, r21, r22] = R;
  const limX = 1.3 * cam.tanFovX, limY = 1.3 * cam.tanFovY;
  for (let i = begin; i < end; i++) {
    const o9 = 9 * i;
    let any = false;
    for (let k = 0; k < 9; k++) if (grad2d[o9 + k] !== 0) { any = true; break; }
    out.means[3 * i] = out.means[3 * i + 1] = out.means[3 * i + 2] = 0;
    out.scales[3 * i] = out.scales[3 * i + 1] = out.scales[3 * i + 2] = 0;
    out.rotations[4 * i] = out.rotations[4 * i + 1] = out.rotations[4 * i + 2] = out.rotations[4 * i + 3] = 0;
    out.opacities[i] = 0;
    out.sh.fill(0, 3 * K * i, 3 * K * (i + 1));
    if (!any) continue;
    const dU = grad2d[o9], dV = grad2d[o9 + 1], dQa = grad2d[o9 + 2], dQb = grad2d[o9 + 3], dQc = grad2d[o9 + 4];
    const dOp = grad2d[o9 + 5];

    const mx = means[3 * i], my = means[3 * i + 1], mz = means[3 * i + 2];
    const X = r00 * mx + r01 * my + r02 * mz + t[0];
    const Y = r10 * mx + r11 * my + r12 * mz + t[1];
    const Z = r20 * mx + r21 * my + r22 * mz + t[2];
    if (!(Z > NEAR)) continue;
    const opacity = 1 / (1 + Math.exp(-opacities[i]));
    out.opacities[i] = dOp * opacity * (1 - opacity);

    // Recompute the forward intermediates.
    const qw0 = rotations[4 * i], qx0 = rotations[4 * i + 1], qy0 = rotations[4 * i + 2], qz0 = rotations[4 * i + 3];
    const qn = Math.hypot(qw0, qx0, qy0, qz0);
    const qw = qw0 / qn, qx = qx0 / qn, qy = qy0 / qn, qz = qz0 / qn;
    const s = [Math.exp(scales[3 * i]), Math.exp(scales[3 * i + 1]), Math.exp(scales[3 * i + 2])];
    const Rq = [
      1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy),
      2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx),
      2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy),
    ];
    const M = new Array<number>(9);
    for (let a = 0; a < 3; a++) for (let k = 0; k < 3; k++) M[3 * a + k] = Rq[3 * a + k] * s[k];
    const rX = X / Z, rY = Y / Z;
    const clampX = rX > limX || rX < -limX, clampY = rY > limY || rY < -limY;
    const txz = Math.min(limX, Math.max(-limX, rX)), tyz = Math.min(limY, Math.max(-limY, rY));
    const j00 = fx / Z, j02 = -fx * txz / Z, j11 = fy / Z, j12 = -fy * tyz / Z;
    const T = [
      j00 * r00 + j02 * r20, j00 * r01 + j02 * r21, j00 * r02 + j02 * r22,
      j11 * r10 + j12 * r20, j11 * r11 + j12 * r21, j11 * r12 + j12 * r22,
    ];
    const N = new Array<number>(6);
    for (let a = 0; a < 2; a++) for (let k = 0; k < 3; k++) N[3 * a + k] = T[3 * a] * M[k] + T[3 * a + 1] * M[3 + k] + T[3 * a + 2] * M[6 + k];
    const ca = N[0] * N[0] + N[1] * N[1] + N[2] * N[2] + 0.3;
    const cb = N[0] * N[3] + N[1] * N[4] + N[2] * N[5];
    const cc = N[3] * N[3] + N[4] * N[4] + N[5] * N[5] + 0.3;
    const det = ca * cc - cb * cb;
    const Qa = cc / det, Qb = -cb / det, Qc = ca / det;

    // conic = Σ2⁻¹ ⇒ dΣ2 = −Q dQ Q (dQ symmetric with the off-diagonal gradient split in two).
    const ga = dQa, gb = 0.5 * dQb, gc = dQc;
    const qa0 = Qa * ga + Qb * gb, qa1 = Qa * gb + Qb * gc; // row 0 of Q·dQ
    const qb0 = Qb * ga + Qc * gb, qb1 = Qb * gb + Qc * gc; // row 1
    const sA = -(qa0 * Qa + qa1 * Qb), sB = -(qa0 * Qb + qa1 * Qc), sC = -(qb0 * Qb + qb1 * Qc);
    // Σ2 = N Nᵀ + 0.3 I ⇒ dN = 2·dΣ2_sym·N with dΣ2_sym = [[sA, sB], [sB, sC]].
    const dN = [
      2 * (sA * N[0] + sB * N[3]), 2 * (sA * N[1] + sB * N[4]), 2 * (sA * N[2] + sB * N[5]),
      2 * (sB * N[0] + sC * N[3]), 2 * (sB * N[1] + sC * N[4]), 2 * (sB * N[2] + sC * N[5]),
    ];
    // N = T·M ⇒ dM = Tᵀ dN, dT = dN Mᵀ.
    const dM = new Array<number>(9);
    for (let a = 0; a < 3; a++) for (let k = 0; k < 3; k++) dM[3 * a + k] = T[a] * dN[k] + T[3 + a] * dN[3 + k];
    const dT = new Array<number>(6);
    for (let a = 0; a < 2; a++) for (let b = 0; b < 3; b++) dT[3 * a + b] = dN[3 * a] * M[3 * b] + dN[3 * a + 1] * M[3 * b + 1] + dN[3 * a + 2] * M[3 * b + 2];
    // T = J·W ⇒ dJ = dT·Wᵀ (only the four non-constant entries of J).
    const dj00 = dT[0] * r00 + dT[1] * r01 + dT[2] * r02;
    const dj02 = dT[0] * r20 + dT[1] * r21 + dT[2] * r22;
    const dj11 = dT[3] * r10 + dT[4] * r11 + dT[5] * r12;
    const dj12 = dT[3] * r20 + dT[4] * r21 + dT[5] * r22;

    // To camera space.
    const Z2 = Z * Z;
    let dX = dU * fx / Z, dY = dV * fy / Z;
    let dZ = -dU * fx * X / Z2 - dV * fy * Y / Z2;
    dZ += -dj00 * fx / Z2 - dj11 * fy / Z2;
    if (clampX) dZ += dj02 * fx * txz / Z2 * (cudaJacobian ? 2 : 1);
    else { dX += -dj02 * fx / Z2; dZ += dj02 * 2 * fx * X / (Z2 * Z); }
    if (clampY) dZ += dj12 * fy * tyz / Z2 * (cudaJacobian ? 2 : 1);
    else { dY += -dj12 * fy / Z2; dZ += dj12 * 2 * fy * Y / (Z2 * Z); }
    let gmx = r00 * dX + r10 * dY + r20 * dZ;
    let gmy = r01 * dX + r11 * dY + r21 * dZ;
    let gmz = r02 * dX + r12 * dY + r22 * dZ;

    // M = R_q·diag(s).
    const dRq = new Array<number>(9);
    for (let k = 0; k < 3; k++) {
      let ds = 0;
      for (let a = 0; a < 3; a++) { ds += dM[3 * a + k] * Rq[3 * a + k]; dRq[3 * a + k] = dM[3 * a + k] * s[k]; }
      out.scales[3 * i + k] = ds * s[k];
    }
    const [G00, G01, G02, G10, G11, G12, G20, G21, G22] = dRq;
    const dqw = 2 * (-qz * G01 + qy * G02 + qz * G10 - qx * G12 - qy * G20 + qx * G21);
    const dqx = 2 * (qy * G01 + qz * G02 + qy * G10 - 2 * qx * G11 - qw * G12 + qz * G20 + qw * G21 - 2 * qx * G22);
    const dqy = 2 * (-2 * qy * G00 + qx * G01 + qw * G02 + qx * G10 + qz * G12 - qw * G20 + qz * G21 - 2 * qy * G22);
    const dqz = 2 * (-2 * qz * G00 - qw * G01 + qx * G02 + qw * G10 - 2 * qz * G11 + qy * G12 + qx * G20 + qy * G21);
    // Through q/|q|.
    const dot = qw * dqw + qx * dqx + qy * dqy + qz * dqz;
    out.rotations[4 * i] = (dqw - qw * dot) / qn;
    out.rotations[4 * i + 1] = (dqx - qx * dot) / qn;
    out.rotations[4 * i + 2] = (dqy - qy * dot) / qn;
    out.rotations[4 * i + 3] = (dqz - qz * dot) / qn;

    // Colour = max(0, Σ_k B_k(dir)·sh_k + 0.5).
    const base = 3 * K * i;
    let ddx = 0, ddy = 0, ddz = 0;
    let dx = 0, dy = 0, dz = 0, dn = 1;
    if (K > 1) {
      dx = mx - campos[0]; dy = my - campos[1]; dz = mz - campos[2];
      dn = Math.hypot(dx, dy, dz);
      dx /= dn; dy /= dn; dz /= dn;
      shBasis(K, dx, dy, dz, basis);
      shBasisGrad(K, dx, dy, dz, bx, by, bz);
    } else basis[0] = 0.28209479177387814;
    for (let c = 0; c < 3; c++) {
      const dcol = grad2d[o9 + 6 + c];
      if (dcol === 0) continue;
      let v = 0.5;
      for (let k = 0; k < K; k++) v += basis[k] * sh[base + 3 * k + c];
      if (v < 0) continue;
      for (let k = 0; k < K; k++) {
        out.sh[base + 3 * k + c] = dcol * basis[k];
        if (K > 1) {
          const w = dcol * sh[base + 3 * k + c];
          ddx += w * bx[k]; ddy += w * by[k]; ddz += w * bz[k];
        }
      }
    }
    if (K > 1) {
      const d = dx * ddx + dy * ddy + dz * ddz;
      gmx += (ddx - dx * d) / dn; gmy += (ddy - dy * d) / dn; gmz += (ddz - dz * d) / dn;
    }
    out.means[3 * i] = gmx; out.means[3 * i + 1] = gmy; out.means[3 * i + 2] = gmz;
  }
}
