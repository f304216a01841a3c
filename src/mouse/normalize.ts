/**
 * The mouse fork's `normalize_cameras` (spec mouse.md §8.2), done so that cameras keep agreeing with their images.
 *
 * The fork estimates the rig's up axis (the camera centres' least-variance direction, signed to agree with the
 * cameras' mean "up"; here it comes from the cameras' level image rows, see rigUp), rotates the world about its
 * origin so that axis becomes +Z, then pushes *each* camera radially to distance 2.7 — which moves cameras by
 * different amounts and breaks multi-view consistency unless they already sat at 2.7. Here the rotation is the same
 * rigid motion, and the distance is reached by one uniform scale of the whole world (mean camera distance → the
 * target), which no image can tell apart from the original.
 */
import { invertRigid, type Camera } from '../cameras/camera.ts';
import type { Mat3, Vec3 } from './geometry.ts';

export interface UprightOptions {
  /** The world axis the rig's up direction is turned to: FaceLift's worlds are Z-up. */
  up: 'z' | 'y';
  /** Mean camera distance from the world origin after scaling; 0 keeps the scale. */
  distance: number;
}

/**
 * The rig's up direction, or null when the cameras cannot tell (fewer than 2, or all facing one way). Cameras are
 * mounted without roll, so each one's image rows (its x axis) lie level: up is the direction most nearly
 * perpendicular to every camera's x axis (least eigenvector of Σ xᵢxᵢᵀ), signed to agree with the cameras' mean
 * up (OpenCV: −y). The fork takes the least-variance direction of the camera *centres* instead, which assumes they lie
 * near a level plane; the real rig's spread (elevations −51°…+78°, spec mouse.md §2) does not, and on it that
 * estimate points sideways (normalize.test.ts).
 */
export function rigUp(cams: readonly Camera[]): Vec3 | null {
  if (cams.length < 2) return null;
  const S = new Array<number>(9).fill(0);
  for (const c of cams) {
    const x = [c.c2w[0]!, c.c2w[4]!, c.c2w[8]!];
    for (let r = 0; r < 3; r++) for (let k = 0; k < 3; k++) S[3 * r + k]! += x[r]! * x[k]!;
  }
  const { values, vectors } = symmetricEigen(S as Mat3);
  const order = [0, 1, 2].sort((a, b) => values[a]! - values[b]!);
  // Rows all parallel: the up axis could be anywhere in the plane perpendicular to them.
  if (!(values[order[1]!]! > 1e-6 * values[order[2]!]!)) return null;
  const k = order[0]!;
  const n: Vec3 = [vectors[k]!, vectors[3 + k]!, vectors[6 + k]!];
  let dot = 0;
  for (const c of cams) dot -= n[0] * c.c2w[1]! + n[1] * c.c2w[5]! + n[2] * c.c2w[9]!;
  return dot < 0 ? [-n[0], -n[1], -n[2]] : n;
}

/** The fork's estimate (least-variance direction of the camera centres, signed like rigUp), to show where it fails. */
export function centrePlaneUp(cams: readonly Camera[]): Vec3 {
  const p = cams.map((c): Vec3 => [c.c2w[3]!, c.c2w[7]!, c.c2w[11]!]);
  const m: Vec3 = [0, 0, 0];
  for (const q of p) for (let k = 0; k < 3; k++) m[k]! += q[k]! / p.length;
  const cov = new Array<number>(9).fill(0);
  for (const q of p) {
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) cov[3 * r + c]! += (q[r]! - m[r]!) * (q[c]! - m[c]!);
  }
  const { values, vectors } = symmetricEigen(cov as Mat3);
  const k = [0, 1, 2].sort((a, b) => values[a]! - values[b]!)[0]!;
  const n: Vec3 = [vectors[k]!, vectors[3 + k]!, vectors[6 + k]!];
  let dot = 0;
  for (const c of cams) dot -= n[0] * c.c2w[1]! + n[1] * c.c2w[5]! + n[2] * c.c2w[9]!;
  return dot < 0 ? [-n[0], -n[1], -n[2]] : n;
}

/**
 * The rig turned upright and scaled: every camera gets c2w' = [Q·R | s·Q·p] for one rotation Q (rig up → the
 * chosen axis) and one scale s. A world point X seen by the old camera is seen by the new one at s·Q·X, on the
 * same pixel.
 */
export function uprightRig(cams: readonly Camera[], opts: UprightOptions): Camera[] {
  const up = rigUp(cams);
  const axis: Vec3 = opts.up === 'z' ? [0, 0, 1] : [0, 1, 0];
  const Q = up ? rotationBetween(up, axis) : ([1, 0, 0, 0, 1, 0, 0, 0, 1] as Mat3);
  let mean = 0;
  for (const c of cams) mean += Math.hypot(c.c2w[3]!, c.c2w[7]!, c.c2w[11]!) / cams.length;
  const s = opts.distance > 0 && mean > 0 ? opts.distance / mean : 1;
  return cams.map((c) => {
    const m = c.c2w;
    const c2w = new Float64Array(16);
    for (let r = 0; r < 3; r++) {
      for (let col = 0; col < 4; col++) {
        let v = 0;
        for (let k = 0; k < 3; k++) v += Q[3 * r + k]! * m[4 * k + col]!;
        c2w[4 * r + col] = col === 3 ? s * v : v;
      }
    }
    c2w[15] = 1;
    return { ...c, c2w, w2c: invertRigid(c2w) };
  });
}

/** The smallest rotation taking unit vector a to unit vector b (a half turn about a perpendicular when opposite). */
export function rotationBetween(a: Vec3, b: Vec3): Mat3 {
  const v: Vec3 = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const c = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  if (c < -1 + 1e-12) {
    // Any axis perpendicular to a: R = 2uuᵀ − I.
    const t: Vec3 = Math.abs(a[0]) < 0.9 ? [1, 0, 0] : [0, 1, 0];
    const u: Vec3 = [a[1] * t[2] - a[2] * t[1], a[2] * t[0] - a[0] * t[2], a[0] * t[1] - a[1] * t[0]];
    const n = Math.hypot(...u);
    const w = u.map((x) => x / n);
    return [0, 1, 2].flatMap((r) => [0, 1, 2].map((k) => 2 * w[r]! * w[k]! - (r === k ? 1 : 0))) as Mat3;
  }
  // Rodrigues: R = I + [v]× + [v]×² / (1 + c).
  const K: Mat3 = [0, -v[2], v[1], v[2], 0, -v[0], -v[1], v[0], 0];
  const R = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  for (let r = 0; r < 3; r++) {
    for (let k = 0; k < 3; k++) {
      let k2 = 0;
      for (let j = 0; j < 3; j++) k2 += K[3 * r + j]! * K[3 * j + k]!;
      R[3 * r + k]! += K[3 * r + k]! + k2 / (1 + c);
    }
  }
  return R as Mat3;
}

/** Eigen-decomposition of a symmetric 3×3 matrix by Jacobi rotations; eigenvectors are the columns of `vectors`. */
export function symmetricEigen(m: Mat3): { values: Vec3; vectors: Mat3 } {
  const a = [...m];
  const v = [1, 0, 0, 0, 1, 0, 0, 0, 1];
  for (let sweep = 0; sweep < 50; sweep++) {
    const off = a[1]! ** 2 + a[2]! ** 2 + a[5]! ** 2;
    if (off < 1e-30 * (a[0]! ** 2 + a[4]! ** 2 + a[8]! ** 2) || off === 0) break;
    for (const [p, q] of [[0, 1], [0, 2], [1, 2]] as const) {
      const apq = a[3 * p + q]!;
      if (apq === 0) continue;
      const theta = (a[3 * q + q]! - a[3 * p + p]!) / (2 * apq);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      for (let k = 0; k < 3; k++) {
        // a ← a·J (columns p, q), then Jᵀ·a (rows p, q); v ← v·J.
        const akp = a[3 * k + p]!, akq = a[3 * k + q]!;
        a[3 * k + p] = c * akp - s * akq;
        a[3 * k + q] = s * akp + c * akq;
      }
      for (let k = 0; k < 3; k++) {
        const apk = a[3 * p + k]!, aqk = a[3 * q + k]!;
        a[3 * p + k] = c * apk - s * aqk;
        a[3 * q + k] = s * apk + c * aqk;
      }
      for (let k = 0; k < 3; k++) {
        const vkp = v[3 * k + p]!, vkq = v[3 * k + q]!;
        v[3 * k + p] = c * vkp - s * vkq;
        v[3 * k + q] = s * vkp + c * vkq;
      }
    }
  }
  return { values: [a[0]!, a[4]!, a[8]!], vectors: v as Mat3 };
}
