/**
 * A pinhole camera in the OpenCV convention (x right, y down, z forward), in a Z-up world (spec README).
 * Matrices are 4×4 row-major. Pixel (col i, row j) has its centre at continuous coordinate (i+0.5, j+0.5);
 * a camera-space point (X, Y, Z) projects to (fx·X/Z + cx, fy·Y/Z + cy) in those coordinates.
 */
export interface Camera {
  readonly width: number;
  readonly height: number;
  readonly fx: number;
  readonly fy: number;
  readonly cx: number;
  readonly cy: number;
  /** camera → world. */
  readonly c2w: Float64Array;
  /** world → camera (inverse of c2w). */
  readonly w2c: Float64Array;
}

/** Inverse of a rigid 4×4 transform [R t; 0 1] (row-major): [Rᵀ −Rᵀt; 0 1]. */
export function invertRigid(m: ArrayLike<number>): Float64Array {
  const r = new Float64Array(16);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) r[i * 4 + j] = m[j * 4 + i];
  for (let i = 0; i < 3; i++) r[i * 4 + 3] = -(r[i * 4] * m[3] + r[i * 4 + 1] * m[7] + r[i * 4 + 2] * m[11]);
  r[15] = 1;
  return r;
}

/** Focal length in pixels for a field of view (degrees) across `size` pixels. */
export function focalFromFov(fovDeg: number, size: number): number {
  return size / (2 * Math.tan((fovDeg * Math.PI) / 360));
}

/**
 * A camera on a sphere around the origin looking at it (spec pipeline.md §7): position
 * (r cos el cos az, r cos el sin az, r sin el); forward = −pos/|pos|; right = normalize(forward × ẑ);
 * up' = normalize(right × forward); c2w rotation columns [right, −up', forward].
 * Azimuth 270°, elevation 0° is FaceLift's front camera at (0, −r, 0).
 */
export function orbitCamera(opts: {
  azimuthDeg: number;
  elevationDeg: number;
  radius: number;
  fovDeg: number;
  width: number;
  height?: number;
}): Camera {
  const { azimuthDeg, elevationDeg, radius, fovDeg, width } = opts;
  const height = opts.height ?? width;
  const az = (azimuthDeg * Math.PI) / 180;
  const el = (elevationDeg * Math.PI) / 180;
  const pos = [radius * Math.cos(el) * Math.cos(az), radius * Math.cos(el) * Math.sin(az), radius * Math.sin(el)];
  const n = Math.hypot(pos[0], pos[1], pos[2]);
  const f = [-pos[0] / n, -pos[1] / n, -pos[2] / n];
  const right = normalize([f[1], -f[0], 0]); // f × (0,0,1)
  const up = normalize(cross(right, f));
  const c2w = new Float64Array([
    right[0], -up[0], f[0], pos[0],
    right[1], -up[1], f[1], pos[1],
    right[2], -up[2], f[2], pos[2],
    0, 0, 0, 1,
  ]);
  const fx = focalFromFov(fovDeg, width);
  const fy = focalFromFov(fovDeg, height);
  return { width, height, fx, fy, cx: width / 2, cy: height / 2, c2w, w2c: invertRigid(c2w) };
}

function cross(a: number[], b: number[]): number[] {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

function normalize(v: number[]): number[] {
  const n = Math.hypot(v[0], v[1], v[2]);
  if (n === 0) throw new RangeError('cannot normalise a zero vector (camera looking straight up or down?)');
  return [v[0] / n, v[1] / n, v[2] / n];
}
