/**
 * Per-Gaussian preprocessing of the graphdeco 3DGS rasterizer (spec gslrm.md §5, golden README §1.4):
 * view transform, near cull at Z ≤ 0.2, EWA projection with the 1.3·tan(fov/2) Jacobian clamp, +0.3 px²
 * low-pass, conic, 3σ radius and 16×16 tile rectangle, sigmoid opacity and SH colour.
 *
 * Everything is computed in float64 (JS numbers) and stored as float32, so results sit within float32 rounding
 * of the golden float64 reference.
 */
import type { Camera } from '../cameras/camera.ts';
import { shBasis } from './sh.ts';

export const TILE = 16;
export const NEAR = 0.2;
export const ALPHA_MIN = 1 / 255;

/** The numbers of a camera the rasterizer needs, flattened so that they cross to worker threads cheaply. */
export interface CamParams {
  width: number;
  height: number;
  fx: number;
  fy: number;
  cx: number;
  cy: number;
  /** w2c rotation, row-major 3×3. */
  R: number[];
  /** w2c translation. */
  t: number[];
  /** camera centre in world coordinates (for SH view directions). */
  campos: number[];
  tanFovX: number;
  tanFovY: number;
  tilesX: number;
  tilesY: number;
}

export function camParams(cam: Camera): CamParams {
  const { width, height, fx, fy, cx, cy, w2c, c2w } = cam;
  if (!(width > 0 && height > 0 && Number.isInteger(width) && Number.isInteger(height))) {
    throw new RangeError(`camera size must be positive integers, got ${width}×${height}`);
  }
  for (const [k, v] of Object.entries({ fx, fy, cx, cy })) {
    if (!Number.isFinite(v) || ((k === 'fx' || k === 'fy') && v <= 0)) throw new RangeError(`camera ${k} must be a finite${k[0] === 'f' ? ' positive' : ''} number, got ${v}`);
  }
  return {
    width, height, fx, fy, cx, cy,
    R: [w2c[0], w2c[1], w2c[2], w2c[4], w2c[5], w2c[6], w2c[8], w2c[9], w2c[10]],
    t: [w2c[3], w2c[7], w2c[11]],
    campos: [c2w[3], c2w[7], c2w[11]],
    tanFovX: width / (2 * fx),
    tanFovY: height / (2 * fy),
    tilesX: Math.ceil(width / TILE),
    tilesY: Math.ceil(height / TILE),
  };
}

/** The Gaussian parameters as plain arrays (a GaussianSet, or its copy in shared memory on a worker). */
export interface GaussianArrays {
  count: number;
  shDegree: number;
  means: Float32Array;
  scales: Float32Array;
  rotations: Float32Array;
  opacities: Float32Array;
  sh: Float32Array;
}

/**
 * Per-Gaussian results of preprocessing for one camera.
 * `proj` has stride 12 (one record per Gaussian, so that compositing touches one cache line per Gaussian):
 * mean2d x, y (continuous pixel coordinates, centre of pixel i at i+0.5), conic xx, xy, yy, opacity,
 * kk = 2·ln(255·opacity) (alpha ≥ 1/255 only inside the ellipse dᵀ·conic·d ≤ kk), the vertical half extent (px) of
 * that ellipse plus a 1 px margin, colour r, g, b, depth.
 * `rect` has stride 4: tile x0, y0, x1, y1 (half-open); x0 = x1 means culled.
 */
export interface Projected {
  proj: Float32Array;
  depth: Float32Array;
  rect: Int32Array;
  radius: Int32Array;
}

export function allocProjected(count: number, shared = false): Projected {
  const mk = <T>(C: new (b: ArrayBufferLike) => T, bytes: number): T => new C(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  return {
    proj: mk(Float32Array, 48 * count),
    depth: mk(Float32Array, 4 * count),
    rect: mk(Int32Array, 16 * count),
    radius: mk(Int32Array, 4 * count),
  };
}

export interface ProjectOptions {
  /** true (default): graphdeco's 16×16 tile rectangle from the 3σ radius; false: every pixel (the golden "dense" variant). */
  tileCull: boolean;
}

/**
 * The camera-independent part of preprocessing, computed once per scene (SplatRenderer) or per call (rasterize):
 * Σ3 = R_q S Sᵀ R_qᵀ (xx, xy, xz, yy, yz, zz), sigmoid opacity, 2·ln(255·opacity), and for SH degree 0 the colour.
 */
export interface SceneCache {
  cov3: Float64Array;
  opacity: Float64Array;
  logAlpha: Float64Array;
  /** degree 0 only (view-independent); empty otherwise. */
  color: Float64Array;
}

export function allocSceneCache(count: number, shDegree: number, shared = false): SceneCache {
  const mk = (n: number) => new Float64Array(shared ? new SharedArrayBuffer(8 * n) : new ArrayBuffer(8 * n));
  return { cov3: mk(6 * count), opacity: mk(count), logAlpha: mk(count), color: mk(shDegree === 0 ? 3 * count : 0) };
}

export function cacheRange(g: GaussianArrays, cache: SceneCache, begin: number, end: number): void {
  const { scales, rotations, opacities, sh } = g;
  const { cov3, opacity, logAlpha, color } = cache;
  const deg0 = g.shDegree === 0;
  for (let i = begin; i < end; i++) {
    opacity[i] = 1 / (1 + Math.exp(-opacities[i]));
    logAlpha[i] = 2 * Math.log(255 * opacity[i]);
    let qw = rotations[4 * i], qx = rotations[4 * i + 1], qy = rotations[4 * i + 2], qz = rotations[4 * i + 3];
    const qn = Math.sqrt(qw * qw + qx * qx + qy * qy + qz * qz);
    qw /= qn; qx /= qn; qy /= qn; qz /= qn;
    const s0 = Math.exp(scales[3 * i]), s1 = Math.exp(scales[3 * i + 1]), s2 = Math.exp(scales[3 * i + 2]);
    const m00 = (1 - 2 * (qy * qy + qz * qz)) * s0, m01 = 2 * (qx * qy - qw * qz) * s1, m02 = 2 * (qx * qz + qw * qy) * s2;
    const m10 = 2 * (qx * qy + qw * qz) * s0, m11 = (1 - 2 * (qx * qx + qz * qz)) * s1, m12 = 2 * (qy * qz - qw * qx) * s2;
    const m20 = 2 * (qx * qz - qw * qy) * s0, m21 = 2 * (qy * qz + qw * qx) * s1, m22 = (1 - 2 * (qx * qx + qy * qy)) * s2;
    const o6 = 6 * i;
    cov3[o6] = m00 * m00 + m01 * m01 + m02 * m02;
    cov3[o6 + 1] = m00 * m10 + m01 * m11 + m02 * m12;
    cov3[o6 + 2] = m00 * m20 + m01 * m21 + m02 * m22;
    cov3[o6 + 3] = m10 * m10 + m11 * m11 + m12 * m12;
    cov3[o6 + 4] = m10 * m20 + m11 * m21 + m12 * m22;
    cov3[o6 + 5] = m20 * m20 + m21 * m21 + m22 * m22;
    if (deg0) for (let c = 0; c < 3; c++) color[3 * i + c] = Math.max(0, 0.28209479177387814 * sh[3 * i + c] + 0.5);
  }
}

/**
 * Preprocesses Gaussians [begin, end) for one camera (using `cache` filled by cacheRange) and adds, for every
 * tile, how many of them touch it to `tileCount`. Returns the number of (Gaussian, tile) pairs.
 */
export function projectRange(
  g: GaussianArrays, cache: SceneCache, cam: CamParams, opts: ProjectOptions, out: Projected, begin: number, end: number, tileCount: Int32Array,
): number {
  const { means, sh } = g;
  const { cov3, opacity: opac, logAlpha, color } = cache;
  const K = (g.shDegree + 1) * (g.shDegree + 1);
  const basis = new Float64Array(16);
  const { fx, fy, cx, cy, R, t, campos, tilesX, tilesY } = cam;
  const [r00, r01, r02, r10, r11, r12, r20, r21, r22] = R;
  const limX = 1.3 * cam.tanFovX, limY = 1.3 * cam.tanFovY;
  const { proj, depth, rect, radius } = out;
  // Local copies of the module constants (see tiles.ts: V8 checks module bindings on every use in a loop).
  const near = +NEAR, alphaMin = +ALPHA_MIN, tileW = TILE, invTile = 1 / TILE;
  // Tile counts as a 2-D difference array: four corner updates per Gaussian instead of a loop over its tiles
  // (short loops of varying length mispredict); summed into `tileCount` at the end.
  const cw = tilesX + 1, corner = new Int32Array(cw * (tilesY + 1));
  let pairs = 0;
  for (let i = begin; i < end; i++) {
    rect[4 * i] = rect[4 * i + 2] = 0;
    radius[i] = 0;
    const mx = means[3 * i], my = means[3 * i + 1], mz = means[3 * i + 2];
    const X = r00 * mx + r01 * my + r02 * mz + t[0];
    const Y = r10 * mx + r11 * my + r12 * mz + t[1];
    const Z = r20 * mx + r21 * my + r22 * mz + t[2];
    depth[i] = Z;
    if (!(Z > near)) continue;
    const opacity = opac[i];
    // alpha = opacity·exp(power) ≤ opacity, so such a Gaussian is skipped at every pixel.
    if (opacity < alphaMin) continue;
    const iZ = 1 / Z;
    const u = fx * X * iZ + cx, v = fy * Y * iZ + cy;

    // J·W (2×3) with the clamped ratios inside J only; Σ2 = (JW) Σ3 (JW)ᵀ + 0.3 I.
    const txz = Math.min(limX, Math.max(-limX, X * iZ)), tyz = Math.min(limY, Math.max(-limY, Y * iZ));
    const j00 = fx * iZ, j02 = -fx * txz * iZ, j11 = fy * iZ, j12 = -fy * tyz * iZ;
    const a0 = j00 * r00 + j02 * r20, a1 = j00 * r01 + j02 * r21, a2 = j00 * r02 + j02 * r22;
    const b0 = j11 * r10 + j12 * r20, b1 = j11 * r11 + j12 * r21, b2 = j11 * r12 + j12 * r22;
    const o6 = 6 * i;
    const sxx = cov3[o6], sxy = cov3[o6 + 1], sxz = cov3[o6 + 2], syy = cov3[o6 + 3], syz = cov3[o6 + 4], szz = cov3[o6 + 5];
    const as0 = a0 * sxx + a1 * sxy + a2 * sxz, as1 = a0 * sxy + a1 * syy + a2 * syz, as2 = a0 * sxz + a1 * syz + a2 * szz;
    const bs0 = b0 * sxx + b1 * sxy + b2 * sxz, bs1 = b0 * sxy + b1 * syy + b2 * syz, bs2 = b0 * sxz + b1 * syz + b2 * szz;
    const ca = as0 * a0 + as1 * a1 + as2 * a2 + 0.3;
    const cb = as0 * b0 + as1 * b1 + as2 * b2;
    const cc = bs0 * b0 + bs1 * b1 + bs2 * b2 + 0.3;
    const det = ca * cc - cb * cb;
    if (det === 0) continue;
    const mid = 0.5 * (ca + cc);
    const lambda = mid + Math.sqrt(Math.max(0.1, mid * mid - det));
    const rad = Math.ceil(3 * Math.sqrt(lambda));
    const px = u - 0.5, py = v - 0.5;
    let tx0: number, ty0: number, tx1: number, ty1: number;
    if (opts.tileCull) {
      tx0 = Math.min(tilesX, Math.max(0, Math.trunc((px - rad) * invTile)));
      ty0 = Math.min(tilesY, Math.max(0, Math.trunc((py - rad) * invTile)));
      tx1 = Math.min(tilesX, Math.max(0, Math.trunc((px + rad + tileW - 1) * invTile)));
      ty1 = Math.min(tilesY, Math.max(0, Math.trunc((py + rad + tileW - 1) * invTile)));
    } else {
      tx0 = 0; ty0 = 0; tx1 = tilesX; ty1 = tilesY;
    }
    if (tx1 <= tx0 || ty1 <= ty0) continue;
    radius[i] = rad;
    // Outside the ellipse dᵀΣ2⁻¹d ≤ 2 ln(255·opacity) every alpha is < 1/255: the pixels (and tiles) there can be
    // dropped without changing any result. The margins (k + 4e-6; relative 1e-3, for the float32 conic of
    // elongated splats; 1e-3 px) contain everything the compositing's pre-test lets through (tiles.ts).
    const k = logAlpha[i];
    const ex = Math.sqrt(Math.max(0, k + 4e-6) * ca) * (1 + 1e-3) + 1e-3, ey = Math.sqrt(Math.max(0, k + 4e-6) * cc) * (1 + 1e-3) + 1e-3;
    tx0 = Math.max(tx0, Math.floor((px - ex) * invTile));
    ty0 = Math.max(ty0, Math.floor((py - ey) * invTile));
    tx1 = Math.min(tx1, Math.floor((px + ex) * invTile) + 1);
    ty1 = Math.min(ty1, Math.floor((py + ey) * invTile) + 1);
    if (tx1 <= tx0 || ty1 <= ty0) continue;

    const o12 = 12 * i;
    proj[o12] = u; proj[o12 + 1] = v;
    const iDet = 1 / det;
    proj[o12 + 2] = cc * iDet; proj[o12 + 3] = -cb * iDet; proj[o12 + 4] = ca * iDet;
    proj[o12 + 5] = opacity; proj[o12 + 6] = k; proj[o12 + 7] = ey; proj[o12 + 11] = Z;
    rect[4 * i] = tx0; rect[4 * i + 1] = ty0; rect[4 * i + 2] = tx1; rect[4 * i + 3] = ty1;
    corner[ty0 * cw + tx0]++; corner[ty0 * cw + tx1]--; corner[ty1 * cw + tx0]--; corner[ty1 * cw + tx1]++;
    pairs += (tx1 - tx0) * (ty1 - ty0);

    if (K === 1) {
      proj[o12 + 8] = color[3 * i]; proj[o12 + 9] = color[3 * i + 1]; proj[o12 + 10] = color[3 * i + 2];
    } else {
      const base = i * K * 3;
      let dx = mx - campos[0], dy = my - campos[1], dz = mz - campos[2];
      const dn = Math.sqrt(dx * dx + dy * dy + dz * dz);
      dx /= dn; dy /= dn; dz /= dn;
      shBasis(K, dx, dy, dz, basis);
      for (let c = 0; c < 3; c++) {
        let s = 0.5;
        for (let kk = 0; kk < K; kk++) s += basis[kk] * sh[base + kk * 3 + c];
        proj[o12 + 8 + c] = Math.max(0, s);
      }
    }
  }
  for (let ty = 0; ty < tilesY; ty++) {
    for (let tx = 0, run = 0; tx < tilesX; tx++) {
      run += corner[ty * cw + tx];
      const above = ty > 0 ? corner[(ty - 1) * cw + tx] : 0;
      corner[ty * cw + tx] = run + above;
      tileCount[ty * tilesX + tx] += run + above;
    }
  }
  return pairs;
}

/**
 * Stable counting sort of (Gaussian, tile) pairs into per-tile lists, for Gaussians [begin, end):
 * `cursor[tile]` is where this range's next entry for that tile goes (advanced in place).
 */
export function scatterRange(out: Projected, tilesX: number, begin: number, end: number, cursor: Int32Array, ids: Int32Array): void {
  const { rect } = out;
  for (let i = begin; i < end; i++) {
    const tx0 = rect[4 * i], tx1 = rect[4 * i + 2];
    if (tx1 <= tx0) continue;
    const ty0 = rect[4 * i + 1], ty1 = rect[4 * i + 3];
    for (let ty = ty0; ty < ty1; ty++) for (let tx = tx0; tx < tx1; tx++) ids[cursor[ty * tilesX + tx]++] = i;
  }
}

/** Reusable buffers of depthOrder: keys, Gaussian indices and packed tile rectangles, two of each. */
export interface SortScratch { a: Uint32Array; b: Uint32Array; c: Int32Array; d: Int32Array; e: Uint32Array; f: Uint32Array }

export function allocSortScratch(): SortScratch {
  return { a: new Uint32Array(0), b: new Uint32Array(0), c: new Int32Array(0), d: new Int32Array(0), e: new Uint32Array(0), f: new Uint32Array(0) };
}

/**
 * The Gaussians with a non-empty tile rectangle, sorted by view depth (ascending; equal depths by index): an LSD
 * radix sort on the float32 bit patterns, which order like the values since every such depth is > 0.2.
 * `boxes[k]` is the tile rectangle of `order[k]` packed in 32 bits (x0, y0, width − 1, height − 1; 8 bits each),
 * carried along by the sort so that scatterOrdered reads it in order instead of fetching `rect` at random (a
 * cache miss per Gaussian); null when the image has more than 256 tiles across or down.
 */
export function depthOrder(out: Projected, count: number, scratch: SortScratch): { order: Int32Array; n: number; boxes: Uint32Array | null } {
  const { rect } = out;
  const bits = new Uint32Array(out.depth.buffer, out.depth.byteOffset, out.depth.length);
  if (scratch.a.length < count) {
    scratch.a = new Uint32Array(count); scratch.b = new Uint32Array(count); scratch.c = new Int32Array(count); scratch.d = new Int32Array(count);
    scratch.e = new Uint32Array(count); scratch.f = new Uint32Array(count);
  }
  let ka = scratch.a, kb = scratch.b, ia = scratch.c, ib = scratch.d, ba = scratch.e, bb = scratch.f;
  let n = 0, lo = 0xffffffff, hi = 0, big = 0;
  for (let i = 0; i < count; i++) {
    const tx0 = rect[4 * i], tx1 = rect[4 * i + 2];
    if (tx1 <= tx0) continue;
    const ty0 = rect[4 * i + 1], w = tx1 - tx0 - 1, h = rect[4 * i + 3] - ty0 - 1;
    big |= tx0 | ty0 | w | h;
    const key = bits[i];
    ka[n] = key; ia[n] = i; ba[n] = (tx0 | (ty0 << 8) | (w << 16) | (h << 24)) >>> 0; n++;
    if (key < lo) lo = key;
    if (key > hi) hi = key;
  }
  // Only the bits in which the keys differ need sorting: a scene's depths span a factor of a few, i.e. ~23 of
  // the 31 bits, which two passes of ≤ 12-bit digits cover instead of three. Stable passes on key − lo give the
  // same order as on the full keys.
  const width = n > 0 && hi > lo ? 32 - Math.clz32(hi - lo) : 0;
  const passes = Math.ceil(width / 12), digit = passes > 0 ? Math.ceil(width / passes) : 0, dmask = (1 << digit) - 1;
  for (let k = 0; k < n; k++) ka[k] -= lo;
  const hist = new Int32Array(1 << digit);
  for (let pass = 0, shift = 0; pass < passes; pass++, shift += digit) {
    hist.fill(0);
    for (let k = 0; k < n; k++) hist[(ka[k] >>> shift) & dmask]++;
    let sum = 0;
    for (let b = 0; b <= dmask; b++) { const c = hist[b]; hist[b] = sum; sum += c; }
    for (let k = 0; k < n; k++) {
      const key = ka[k];
      const pos = hist[(key >>> shift) & dmask]++;
      kb[pos] = key; ib[pos] = ia[k]; bb[pos] = ba[k];
    }
    const tk = ka; ka = kb; kb = tk;
    const ti = ia; ia = ib; ib = ti;
    const tb = ba; ba = bb; bb = tb;
  }
  return { order: ia, n, boxes: big < 256 ? ba : null };
}

/**
 * Like scatterRange, visiting the Gaussians in `order[0, n)` (so each tile's list comes out in that order); with
 * depthOrder's `boxes`, the tile rectangles are read from there.
 */
export function scatterOrdered(
  out: Projected, tilesX: number, order: Int32Array, n: number, cursor: Int32Array, ids: Int32Array, boxes: Uint32Array | null = null,
): void {
  if (boxes) {
    for (let k = 0; k < n; k++) {
      const i = order[k], bx = boxes[k];
      const tx0 = bx & 255, ty0 = (bx >>> 8) & 255, tx1 = tx0 + ((bx >>> 16) & 255) + 1, ty1 = ty0 + (bx >>> 24) + 1;
      for (let ty = ty0; ty < ty1; ty++) for (let tx = tx0; tx < tx1; tx++) ids[cursor[ty * tilesX + tx]++] = i;
    }
    return;
  }
  const { rect } = out;
  for (let k = 0; k < n; k++) {
    const i = order[k];
    const tx0 = rect[4 * i], tx1 = rect[4 * i + 2], ty0 = rect[4 * i + 1], ty1 = rect[4 * i + 3];
    for (let ty = ty0; ty < ty1; ty++) for (let tx = tx0; tx < tx1; tx++) ids[cursor[ty * tilesX + tx]++] = i;
  }
}
