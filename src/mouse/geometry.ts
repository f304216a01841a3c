/**
 * Camera geometry for rig data, as pure functions on row-major 3×3 matrices and 3-vectors: what a 2-D image
 * transform does to the intrinsics, the point nearest to a set of rays, and moving a sample's world so that the
 * object sits at the origin with the mean camera distance FaceLift's 2.7.
 */
export type Mat3 = [number, number, number, number, number, number, number, number, number];
export type Vec3 = [number, number, number];

export function det3(m: Mat3 | number[]): number {
  return m[0]! * (m[4]! * m[8]! - m[5]! * m[7]!) - m[1]! * (m[3]! * m[8]! - m[5]! * m[6]!) + m[2]! * (m[3]! * m[7]! - m[4]! * m[6]!);
}

/** Rᵀ·v */
export function mulT(R: Mat3, v: Vec3): Vec3 {
  return [R[0] * v[0] + R[3] * v[1] + R[6] * v[2], R[1] * v[0] + R[4] * v[1] + R[7] * v[2], R[2] * v[0] + R[5] * v[1] + R[8] * v[2]];
}

/** R·v */
export function mul(R: Mat3, v: Vec3): Vec3 {
  return [R[0] * v[0] + R[1] * v[1] + R[2] * v[2], R[3] * v[0] + R[4] * v[1] + R[5] * v[2], R[6] * v[0] + R[7] * v[1] + R[8] * v[2]];
}

/** Camera centre in world coordinates: −Rᵀ·T. */
export function cameraCentre(R: Mat3, T: Vec3): Vec3 {
  const c = mulT(R, T);
  return [-c[0], -c[1], -c[2]];
}

/**
 * Pinhole intrinsics in the project's continuous pixel coordinates (cameras/camera.ts: the image spans [0, W], pixel
 * i's centre is at i + ½).
 */
export interface Intrinsics {
  fx: number;
  fy: number;
  cx: number;
  cy: number;
}

/** From an OpenCV K (pixel i's centre at i, as calibration toolboxes write it) to continuous coordinates. */
export const intrinsicsOf = (K: Mat3): Intrinsics => ({ fx: K[0], fy: K[4], cx: K[2] + 0.5, cy: K[5] + 0.5 });

/**
 * The intrinsics after the image is scaled by `s` (one factor for both axes) and shifted by (tx, ty): a point at
 * continuous coordinate u lands at s·u + tx. Every 2-D transform of an image goes through here.
 */
export function transformIntrinsics(k: Intrinsics, s: number, tx: number, ty: number): Intrinsics {
  return { fx: k.fx * s, fy: k.fy * s, cx: s * k.cx + tx, cy: s * k.cy + ty };
}

/** Where a world point lands in the image (continuous coordinates), or null behind the camera. */
export function project(k: Intrinsics, R: Mat3, T: Vec3, x: Vec3): [number, number] | null {
  const c = mul(R, x);
  const z = c[2] + T[2];
  if (z <= 1e-9) return null;
  return [(k.fx * (c[0] + T[0])) / z + k.cx, (k.fy * (c[1] + T[1])) / z + k.cy];
}

/** World direction of the ray through the continuous image point (u, v). */
export function pixelRay(k: Intrinsics, R: Mat3, u: number, v: number): Vec3 {
  const d = mulT(R, [(u - k.cx) / k.fx, (v - k.cy) / k.fy, 1]);
  const n = Math.hypot(...d);
  return [d[0] / n, d[1] / n, d[2] / n];
}

/** The point with the least summed squared distance to the rays (origin oᵢ, unit direction dᵢ). */
export function nearestPointToRays(origins: Vec3[], dirs: Vec3[]): Vec3 {
  // Σ (I − d dᵀ) x = Σ (I − d dᵀ) o
  const A = new Array<number>(9).fill(0);
  const b = [0, 0, 0];
  origins.forEach((o, i) => {
    const d = dirs[i]!;
    for (let r = 0; r < 3; r++) {
      for (let c = 0; c < 3; c++) {
        const m = (r === c ? 1 : 0) - d[r]! * d[c]!;
        A[3 * r + c]! += m;
        b[r]! += m * o[c]!;
      }
    }
  });
  return solve3(A, b);
}

function solve3(A: number[], b: number[]): Vec3 {
  const d = det3(A);
  if (Math.abs(d) < 1e-12) throw new Error('the rays are parallel: no nearest point');
  const col = (k: number) => A.map((v, i) => (i % 3 === k ? b[Math.floor(i / 3)]! : v));
  return [det3(col(0)) / d, det3(col(1)) / d, det3(col(2)) / d];
}

/**
 * A world→camera transform after the world is moved so that `centre` is the origin and scaled by `scale`
 * (x' = scale·(x − centre)): R stays, T' = scale·(R·centre + T). Projections are unchanged.
 */
export function recentre(R: Mat3, T: Vec3, centre: Vec3, scale: number): Vec3 {
  const rc = mul(R, centre);
  return [scale * (rc[0] + T[0]), scale * (rc[1] + T[1]), scale * (rc[2] + T[2])];
}

/** FaceLift's cameras sit 2.7 from the object. */
export const FACELIFT_DISTANCE = 2.7;
