/**
 * Accumulates Gaussians described the way a modeller thinks of them (centre, orthonormal frame, standard
 * deviations, opacity, display colour) and packs them into a GaussianSet in the stored parameterisation
 * (log-scales, w-first quaternion, opacity logit, SH DC; spec gslrm.md §4).
 */
import { allocGaussians, SH_C0, type GaussianSet } from '../splat/gaussians.ts';

export class GaussianBuilder {
  private n = 0;
  private cap: number;
  private means: Float32Array;
  private scales: Float32Array;
  private rots: Float32Array;
  private opac: Float32Array;
  private rgb: Float32Array;

  constructor(initialCapacity = 1024) {
    this.cap = Math.max(16, initialCapacity);
    this.means = new Float32Array(3 * this.cap);
    this.scales = new Float32Array(3 * this.cap);
    this.rots = new Float32Array(4 * this.cap);
    this.opac = new Float32Array(this.cap);
    this.rgb = new Float32Array(3 * this.cap);
  }

  get count(): number {
    return this.n;
  }

  private grow(): void {
    const cap = this.cap * 2;
    const g = <T extends Float32Array>(a: T, k: number): Float32Array => {
      const b = new Float32Array(k * cap);
      b.set(a);
      return b;
    };
    this.means = g(this.means, 3);
    this.scales = g(this.scales, 3);
    this.rots = g(this.rots, 4);
    this.opac = g(this.opac, 1);
    this.rgb = g(this.rgb, 3);
    this.cap = cap;
  }

  /**
   * Adds one Gaussian. (ax, ay, az) and (bx, by, bz) are its first two unit axes (orthogonal); the third is their
   * cross product. sa, sb, sc are the standard deviations along them; rgb is the display colour in [0, 1].
   */
  add(
    x: number, y: number, z: number,
    ax: number, ay: number, az: number,
    bx: number, by: number, bz: number,
    sa: number, sb: number, sc: number,
    opacity: number,
    r: number, g: number, b: number,
  ): void {
    if (this.n === this.cap) this.grow();
    const i = this.n++;
    this.means[3 * i] = x;
    this.means[3 * i + 1] = y;
    this.means[3 * i + 2] = z;
    this.scales[3 * i] = Math.log(sa);
    this.scales[3 * i + 1] = Math.log(sb);
    this.scales[3 * i + 2] = Math.log(sc);
    const cx = ay * bz - az * by, cy = az * bx - ax * bz, cz = ax * by - ay * bx;
    writeQuaternion(ax, bx, cx, ay, by, cy, az, bz, cz, this.rots, 4 * i);
    const o = Math.min(0.999, Math.max(1e-3, opacity));
    this.opac[i] = Math.log(o / (1 - o));
    this.rgb[3 * i] = r;
    this.rgb[3 * i + 1] = g;
    this.rgb[3 * i + 2] = b;
  }

  /** Packs into a degree-0 GaussianSet. */
  build(): GaussianSet {
    const n = this.n;
    const gs = allocGaussians(n, 0);
    gs.means.set(this.means.subarray(0, 3 * n));
    gs.scales.set(this.scales.subarray(0, 3 * n));
    gs.rotations.set(this.rots.subarray(0, 4 * n));
    gs.opacities.set(this.opac.subarray(0, n));
    for (let i = 0; i < 3 * n; i++) gs.sh[i] = (this.rgb[i] - 0.5) / SH_C0;
    return gs;
  }
}

/** Unit quaternion (w, x, y, z) of the rotation matrix with rows (m00 m01 m02 / m10 m11 m12 / m20 m21 m22). */
export function writeQuaternion(
  m00: number, m01: number, m02: number,
  m10: number, m11: number, m12: number,
  m20: number, m21: number, m22: number,
  out: Float32Array, o: number,
): void {
  const tr = m00 + m11 + m22;
  let w: number, x: number, y: number, z: number;
  if (tr > 0) {
    const s = Math.sqrt(tr + 1) * 2;
    w = 0.25 * s;
    x = (m21 - m12) / s;
    y = (m02 - m20) / s;
    z = (m10 - m01) / s;
  } else if (m00 > m11 && m00 > m22) {
    const s = Math.sqrt(1 + m00 - m11 - m22) * 2;
    w = (m21 - m12) / s;
    x = 0.25 * s;
    y = (m01 + m10) / s;
    z = (m02 + m20) / s;
  } else if (m11 > m22) {
    const s = Math.sqrt(1 + m11 - m00 - m22) * 2;
    w = (m02 - m20) / s;
    x = (m01 + m10) / s;
    y = 0.25 * s;
    z = (m12 + m21) / s;
  } else {
    const s = Math.sqrt(1 + m22 - m00 - m11) * 2;
    w = (m10 - m01) / s;
    x = (m02 + m20) / s;
    y = (m12 + m21) / s;
    z = 0.25 * s;
  }
  if (w < 0) {
    w = -w;
    x = -x;
    y = -y;
    z = -z;
  }
  const n = Math.hypot(w, x, y, z);
  out[o] = w / n;
  out[o + 1] = x / n;
  out[o + 2] = y / n;
  out[o + 3] = z / n;
}
