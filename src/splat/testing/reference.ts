/**
 * A deliberately naive renderer for tests: the golden README §1.4 "dense" steps written per pixel, with no tiles,
 * bounding boxes or masks, used to cross-check the optimised rasterizer on arbitrary scenes and image sizes.
 */
import type { Camera } from '../../cameras/camera.ts';
import type { GaussianSet } from '../gaussians.ts';

export function referenceRender(g: GaussianSet, cam: Camera, bg = [1, 1, 1]): { rgb: Float64Array; T: Float64Array; n: Int32Array } {
  const { width: W, height: H, fx, fy, cx, cy, w2c: m } = cam;
  const items: Array<{ i: number; z: number; u: number; v: number; q: number[]; o: number; c: number[] }> = [];
  for (let i = 0; i < g.count; i++) {
    const p = [0, 1, 2].map((r) => m[4 * r] * g.means[3 * i] + m[4 * r + 1] * g.means[3 * i + 1] + m[4 * r + 2] * g.means[3 * i + 2] + m[4 * r + 3]);
    const [X, Y, Z] = p;
    if (Z <= 0.2) continue;
    const qr = Array.from(g.rotations.subarray(4 * i, 4 * i + 4));
    const qn = Math.hypot(...qr);
    const [w, x, y, z] = qr.map((a) => a / qn);
    const R = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]];
    const s = [0, 1, 2].map((k) => Math.exp(g.scales[3 * i + k]));
    const S3 = [0, 1, 2].map((a) => [0, 1, 2].map((b) => R[a][0] * s[0] ** 2 * R[b][0] + R[a][1] * s[1] ** 2 * R[b][1] + R[a][2] * s[2] ** 2 * R[b][2]));
    const lx = 1.3 * W / (2 * fx), ly = 1.3 * H / (2 * fy);
    const Xc = Math.min(lx, Math.max(-lx, X / Z)) * Z, Yc = Math.min(ly, Math.max(-ly, Y / Z)) * Z;
    const J = [[fx / Z, 0, -fx * Xc / Z ** 2], [0, fy / Z, -fy * Yc / Z ** 2]];
    const Wr = [[m[0], m[1], m[2]], [m[4], m[5], m[6]], [m[8], m[9], m[10]]];
    const T = J.map((row) => [0, 1, 2].map((b) => row[0] * Wr[0][b] + row[1] * Wr[1][b] + row[2] * Wr[2][b]));
    const cov = [0, 1].map((a) => [0, 1].map((b) => {
      let sum = 0;
      for (let k = 0; k < 3; k++) for (let l = 0; l < 3; l++) sum += T[a][k] * S3[k][l] * T[b][l];
      return sum + (a === b ? 0.3 : 0);
    }));
    const det = cov[0][0] * cov[1][1] - cov[0][1] ** 2;
    const c = [0, 1, 2].map((ch) => Math.max(0, 0.28209479177387814 * g.sh[i * 3 * (g.shDegree + 1) ** 2 + ch] + 0.5));
    items.push({ i, z: Z, u: fx * X / Z + cx, v: fy * Y / Z + cy, q: [cov[1][1] / det, -cov[0][1] / det, cov[0][0] / det], o: 1 / (1 + Math.exp(-g.opacities[i])), c });
  }
  items.sort((a, b) => a.z - b.z || a.i - b.i);
  const rgb = new Float64Array(3 * H * W), Tout = new Float64Array(H * W), n = new Int32Array(H * W);
  for (let py = 0; py < H; py++) {
    for (let px = 0; px < W; px++) {
      let T = 1;
      const C = [0, 0, 0];
      for (const it of items) {
        const dx = it.u - (px + 0.5), dy = it.v - (py + 0.5);
        const power = -0.5 * (it.q[0] * dx * dx + it.q[2] * dy * dy) - it.q[1] * dx * dy;
        if (power > 0) continue;
        const alpha = Math.min(0.99, it.o * Math.exp(power));
        if (alpha < 1 / 255) continue;
        const test = T * (1 - alpha);
        if (test < 1e-4) break;
        for (let ch = 0; ch < 3; ch++) C[ch] += it.c[ch] * alpha * T;
        T = test;
        n[py * W + px]++;
      }
      for (let ch = 0; ch < 3; ch++) rgb[ch * H * W + py * W + px] = C[ch] + T * bg[ch];
      Tout[py * W + px] = T;
    }
  }
  return { rgb, T: Tout, n };
}
