/**
 * Signed-distance primitives for building heads. Negative inside, positive outside, roughly in world units.
 * Several are bounds rather than exact distances (ellipsoids, smooth unions); the surface sampler only needs the
 * zero set and a gradient, and tolerates that.
 */
export type Sdf = (x: number, y: number, z: number) => number;

export type Vec3 = readonly [number, number, number];

/** A 3×3 rotation (row-major), applied as local = M · (p − centre). */
export type Mat3 = readonly [number, number, number, number, number, number, number, number, number];

export const IDENTITY3: Mat3 = [1, 0, 0, 0, 1, 0, 0, 0, 1];

/** Rotation about the x axis by `deg` (world → local uses the transpose, which `rotX(-deg)` gives). */
export function rotX(deg: number): Mat3 {
  const a = (deg * Math.PI) / 180;
  const c = Math.cos(a);
  const s = Math.sin(a);
  return [1, 0, 0, 0, c, -s, 0, s, c];
}

export function rotY(deg: number): Mat3 {
  const a = (deg * Math.PI) / 180;
  const c = Math.cos(a);
  const s = Math.sin(a);
  return [c, 0, s, 0, 1, 0, -s, 0, c];
}

export function rotZ(deg: number): Mat3 {
  const a = (deg * Math.PI) / 180;
  const c = Math.cos(a);
  const s = Math.sin(a);
  return [c, -s, 0, s, c, 0, 0, 0, 1];
}

export function mulMat3(a: Mat3, b: Mat3): Mat3 {
  const r = new Array<number>(9);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) r[i * 3 + j] = a[i * 3] * b[j] + a[i * 3 + 1] * b[3 + j] + a[i * 3 + 2] * b[6 + j];
  return r as unknown as Mat3;
}

/**
 * Ellipsoid (Quílez's bound: k0·(k0−1)/k1 with k0 = |p/r|, k1 = |p/r²|), optionally rotated: `toLocal` maps
 * world offsets to the ellipsoid's axes.
 */
export function ellipsoid(centre: Vec3, radii: Vec3, toLocal: Mat3 = IDENTITY3): Sdf {
  const [cx, cy, cz] = centre;
  const [rx, ry, rz] = radii;
  const m = toLocal;
  const rotated = m !== IDENTITY3;
  return (x, y, z) => {
    let px = x - cx;
    let py = y - cy;
    let pz = z - cz;
    if (rotated) {
      const lx = m[0] * px + m[1] * py + m[2] * pz;
      const ly = m[3] * px + m[4] * py + m[5] * pz;
      const lz = m[6] * px + m[7] * py + m[8] * pz;
      px = lx;
      py = ly;
      pz = lz;
    }
    const ax = px / rx, ay = py / ry, az = pz / rz;
    const k0 = Math.sqrt(ax * ax + ay * ay + az * az);
    const bx = ax / rx, by = ay / ry, bz = az / rz;
    const k1 = Math.sqrt(bx * bx + by * by + bz * bz);
    if (k1 < 1e-12) return -Math.min(rx, ry, rz);
    return (k0 * (k0 - 1)) / k1;
  };
}

export function sphere(centre: Vec3, r: number): Sdf {
  const [cx, cy, cz] = centre;
  return (x, y, z) => Math.hypot(x - cx, y - cy, z - cz) - r;
}

/** A cone with rounded ends: spheres of radius ra at a and rb at b, joined tangentially (exact distance). */
export function roundCone(a: Vec3, b: Vec3, ra: number, rb: number): Sdf {
  const bax = b[0] - a[0], bay = b[1] - a[1], baz = b[2] - a[2];
  const l2 = bax * bax + bay * bay + baz * baz;
  const rr = ra - rb;
  const a2 = l2 - rr * rr;
  const il2 = 1 / l2;
  return (x, y, z) => {
    const pax = x - a[0], pay = y - a[1], paz = z - a[2];
    const yy = pax * bax + pay * bay + paz * baz;
    const zz = yy - l2;
    const qx = pax * l2 - bax * yy, qy = pay * l2 - bay * yy, qz = paz * l2 - baz * yy;
    const x2 = qx * qx + qy * qy + qz * qz;
    const y2 = yy * yy * l2;
    const z2 = zz * zz * l2;
    const k = Math.sign(rr) * rr * rr * x2;
    if (Math.sign(zz) * a2 * z2 > k) return Math.sqrt(x2 + z2) * il2 - rb;
    if (Math.sign(yy) * a2 * y2 < k) return Math.sqrt(x2 + y2) * il2 - ra;
    return (Math.sqrt(x2 * a2 * il2) + yy * rr) * il2 - ra;
  };
}

/** A vertical cylinder with elliptical cross-section between zMin and zMax (bound, not exact). */
export function ellipticCylinder(cx: number, cy: number, rx: number, ry: number, zMin: number, zMax: number): Sdf {
  const r = Math.min(rx, ry);
  const zc = (zMin + zMax) / 2;
  const hz = (zMax - zMin) / 2;
  return (x, y, z) => {
    const u = (x - cx) / rx, v = (y - cy) / ry;
    const side = (Math.sqrt(u * u + v * v) - 1) * r;
    const cap = Math.abs(z - zc) - hz;
    return Math.max(side, cap);
  };
}

/** Polynomial smooth minimum: blends over a band of width k (k = 0 is the plain minimum). */
export function smin(a: number, b: number, k: number): number {
  if (k <= 0) return Math.min(a, b);
  const h = Math.max(k - Math.abs(a - b), 0) / k;
  return Math.min(a, b) - h * h * k * 0.25;
}

/** Polynomial smooth maximum (smooth intersection / subtraction with −b). */
export function smax(a: number, b: number, k: number): number {
  return -smin(-a, -b, k);
}

/** Smooth union of several shapes with one blend width. */
export function unionOf(shapes: Sdf[], k: number): Sdf {
  return (x, y, z) => {
    let d = shapes[0](x, y, z);
    for (let i = 1; i < shapes.length; i++) d = smin(d, shapes[i](x, y, z), k);
    return d;
  };
}

/**
 * Unit outward normal by the tetrahedron technique (4 evaluations). Writes into `out` and returns the
 * gradient's length before normalisation (≈ 1 for an exact distance).
 */
export function sdfNormal(f: Sdf, x: number, y: number, z: number, out: Float64Array, h = 5e-4): number {
  const a = f(x + h, y - h, z - h);
  const b = f(x - h, y - h, z + h);
  const c = f(x - h, y + h, z - h);
  const d = f(x + h, y + h, z + h);
  const gx = a - b - c + d;
  const gy = -a - b + c + d;
  const gz = -a + b - c + d;
  const n = Math.sqrt(gx * gx + gy * gy + gz * gz);
  if (n === 0) {
    out[0] = 0;
    out[1] = 0;
    out[2] = 1;
    return 0;
  }
  out[0] = gx / n;
  out[1] = gy / n;
  out[2] = gz / n;
  return n / (4 * h);
}

export function smoothstep(e0: number, e1: number, x: number): number {
  const t = Math.min(1, Math.max(0, (x - e0) / (e1 - e0)));
  return t * t * (3 - 2 * t);
}

export function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

export function lerp(a: number, b: number, t: number): number {
  return a + (b - a) * t;
}

/** One row of a profile solid: at height z, the horizontal section spans |x| ≤ halfWidth and yFront ≤ y ≤ yBack. */
export interface ProfileRow {
  z: number;
  halfWidth: number;
  yFront: number;
  yBack: number;
}

/**
 * A solid described by horizontal sections (rows sorted by z, at least 3): each section is a superellipse,
 * flatter in front (exponent `nFront`) than behind (`nBack`), with half-width and front/back extents interpolated
 * between rows by cubic Hermite splines. This is how a head's front and side silhouettes are specified directly.
 * The ends are cut flat with edges rounded over `round` (so normals stay continuous). Bound, not exact.
 */
export function profileSolid(rows: readonly ProfileRow[], nFront: number, nBack: number, round = 0.04): Sdf {
  if (rows.length < 3) throw new RangeError('profileSolid needs at least 3 rows');
  for (let i = 1; i < rows.length; i++) if (!(rows[i].z > rows[i - 1].z)) throw new RangeError('profileSolid rows must be sorted by increasing z');
  const zs = rows.map((r) => r.z);
  const cols = [rows.map((r) => r.halfWidth), rows.map((r) => r.yFront), rows.map((r) => r.yBack)];
  const slopes = cols.map((v) => v.map((_, i) => {
    const a = Math.max(0, i - 1), b = Math.min(v.length - 1, i + 1);
    return (v[b] - v[a]) / (zs[b] - zs[a]);
  }));
  const zMin = zs[0], zMax = zs[zs.length - 1];
  const val = new Float64Array(3);
  const interp = (z: number): void => {
    const zc = z < zMin ? zMin : z > zMax ? zMax : z;
    let i = 0;
    while (i < zs.length - 2 && zc > zs[i + 1]) i++;
    const h = zs[i + 1] - zs[i];
    const t = (zc - zs[i]) / h;
    const t2 = t * t, t3 = t2 * t;
    const h00 = 2 * t3 - 3 * t2 + 1, h10 = t3 - 2 * t2 + t, h01 = -2 * t3 + 3 * t2, h11 = t3 - t2;
    for (let k = 0; k < 3; k++) {
      const v = cols[k], m = slopes[k];
      val[k] = h00 * v[i] + h10 * h * m[i] + h01 * v[i + 1] + h11 * h * m[i + 1];
    }
  };
  return (x, y, z) => {
    interp(z);
    const a = val[0];
    const yc = (val[1] + val[2]) / 2;
    const b = (val[2] - val[1]) / 2;
    const n = y < yc ? nFront : nBack;
    const u = Math.abs(x) / a, v = Math.abs(y - yc) / b;
    const rho = superNorm(u, v, n);
    const side = (rho - 1) * Math.min(a, b);
    const cap = Math.max(z - zMax, zMin - z);
    return smax(side, cap, round);
  };
}

/** (uⁿ + vⁿ)^(1/n) for u, v ≥ 0, with the common exponents 2 and 2.5 computed without pow(). */
function superNorm(u: number, v: number, n: number): number {
  if (n === 2) return Math.sqrt(u * u + v * v);
  if (n === 2.5) return Math.pow(u * u * Math.sqrt(u) + v * v * Math.sqrt(v), 0.4);
  return (u ** n + v ** n) ** (1 / n);
}

/** Distance to a sphere: a cheap lower bound for any shape inside it, used to skip far features. */
export function sphereBound(cx: number, cy: number, cz: number, r: number): Sdf {
  return (x, y, z) => Math.hypot(x - cx, y - cy, z - cz) - r;
}
