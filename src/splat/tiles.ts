/**
 * Per-tile work of the rasterizer: depth sort of a tile's Gaussian list, front-to-back compositing, and the
 * reverse pass of the backward. One 16×16 tile at a time; a tile's pixels live in small scratch arrays.
 *
 * The loops run Gaussian-outer, pixel-inner (each Gaussian is read once per tile and only visits the pixels of
 * its alpha ≥ 1/255 bounding box); every pixel still sees the Gaussians in depth order, so the result is the
 * per-pixel compositing of the reference, decision for decision.
 */
import { ALPHA_MIN, TILE, type CamParams, type Projected } from './project.ts';

const TPX = TILE * TILE;
const T_STOP = 1e-4;
const ALPHA_MAX = 0.99;

/**
 * exp(−t) for 0 ≤ t < 6 from a 1/256-step table and a cubic Taylor factor: relative error < 1e-11, well below
 * float32 resolution, and several times faster than Math.exp in V8. The cubic is evaluated as
 * (1 + r) + r²·(1/2 + r/6) rather than by Horner: this sits on the critical path of every blend, and the short
 * dependency chain (3 operations deep instead of 6) is what makes it cheap. Only t ≤ ln 255 < 5.55 is ever
 * needed: below that power alpha < 1/255 for any opacity ≤ 1, which the callers test first.
 */
const EXP_TABLE = Float64Array.from({ length: 6 * 256 + 1 }, (_, j) => Math.exp(-j / 256));
function expNeg(table: Float64Array, t: number): number {
  const j = (t * 256) | 0;
  const r = j * (1 / 256) - t, r2 = r * r;
  return table[j] * ((1 + r) + r2 * (0.5 + r * (1 / 6)));
}

/*
 * The hot loops below read these constants through local copies: V8 reads a module-scope binding through the
 * context with a TDZ check on every use, and `alpha = min(alpha, ALPHA_MAX)` written with the binding merges a
 * double with a tagged value, which boxes alpha (a heap allocation per blend). Together a few per cent of a frame.
 */

/**
 * The tile-row pixels (bits x − X0) inside a Gaussian's α ≥ 1/255 ellipse at vertical offset `dy`: the exact dx
 * interval A dx² + 2B dx dy + C dy² ≤ kk, widened (kk + 4e-6 in `disc0`, ±1e-3 px) so that it contains every pixel
 * the compositing's pmin test lets through; 0 when the row misses the ellipse. `disc1` = B² − AC, `uc` = u − 0.5.
 */
function rowSpan(dy: number, disc1: number, disc0: number, invA: number, uc: number, B: number, X0: number, X1: number): number {
  const disc = disc1 * dy * dy + disc0;
  if (disc < 0) return 0;
  const half = Math.sqrt(disc) * invA + 1e-3, mid = uc + B * dy * invA;
  const x0 = Math.max(X0, Math.ceil(mid - half)), x1 = Math.min(X1 - 1, Math.floor(mid + half));
  if (x0 > x1) return 0;
  return ((1 << (x1 - x0 + 1)) - 1) << (x0 - X0);
}

export interface TileScratch {
  /**
   * Per-pixel state, interleaved (one cache line each): forward T, r, g, b, depth, blend count, index of the last
   * blended list entry; reused by the backward. One record instead of separate count arrays: each blend then
   * touches a single line and array.
   */
  st: Float64Array;
  /** the backward's copy of each pixel's last blended index. */
  last: Int32Array;
  done: Uint8Array;
  /** per tile row, bit x set while pixel x is still compositing. */
  mask: Int32Array;
  bucket: Int32Array;
  next: Int32Array;
  // sort
  keys: Float32Array;
  keys2: Float32Array;
  ids2: Int32Array;
  hist: Int32Array;
}

export function allocTileScratch(): TileScratch {
  return {
    st: new Float64Array(8 * TPX),
    last: new Int32Array(TPX), done: new Uint8Array(TPX), mask: new Int32Array(TILE),
    bucket: new Int32Array(1024), next: new Int32Array(TPX),
    keys: new Float32Array(1024), keys2: new Float32Array(1024), ids2: new Int32Array(1024), hist: new Int32Array(1025),
  };
}

/**
 * Sorts ids[start, end) by view depth, ascending and stable (equal depths keep index order, which the scatter
 * produced): a stable bucket pass on depth scaled to [0, n), then an insertion sort that fixes the few
 * inversions inside buckets with exact comparisons.
 */
export function sortTile(ids: Int32Array, start: number, end: number, depth: Float32Array, s: TileScratch): void {
  const n = end - start;
  if (n < 2) return;
  if (s.keys.length < n) {
    const cap = Math.max(n, 2 * s.keys.length);
    s.keys = new Float32Array(cap); s.keys2 = new Float32Array(cap); s.ids2 = new Int32Array(cap); s.hist = new Int32Array(cap + 1);
  }
  const keys = s.keys;
  let lo = Infinity, hi = -Infinity;
  for (let k = 0; k < n; k++) {
    const d = depth[ids[start + k]];
    keys[k] = d;
    if (d < lo) lo = d;
    if (d > hi) hi = d;
  }
  if (n > 32 && hi > lo) {
    const hist = s.hist, keys2 = s.keys2, ids2 = s.ids2;
    const scale = (n - 1) / (hi - lo);
    hist.fill(0, 0, n + 1);
    for (let k = 0; k < n; k++) hist[((keys[k] - lo) * scale) | 0]++;
    let sum = 0;
    for (let b = 0; b < n; b++) { const c = hist[b]; hist[b] = sum; sum += c; }
    for (let k = 0; k < n; k++) {
      const key = keys[k];
      const pos = hist[((key - lo) * scale) | 0]++;
      keys2[pos] = key; ids2[pos] = ids[start + k];
    }
    keys.set(keys2.subarray(0, n));
    ids.set(ids2.subarray(0, n), start);
  }
  for (let a = 1; a < n; a++) {
    const key = keys[a];
    if (keys[a - 1] <= key) continue;
    const id = ids[start + a];
    let b = a - 1;
    while (b >= 0 && keys[b] > key) { keys[b + 1] = keys[b]; ids[start + b + 1] = ids[start + b]; b--; }
    keys[b + 1] = key; ids[start + b + 1] = id;
  }
}

/** Colour outputs, image-sized: rgb planar [3, H, W]; alpha [H, W]. */
export interface ColorPlanes {
  rgb: Float32Array;
  alpha: Float32Array;
}

/** All forward outputs: colour, plus depth, nBlended and terminated [H, W]. */
export interface ImagePlanes extends ColorPlanes {
  depth: Float32Array;
  nBlended: Int32Array;
  terminated: Uint8Array;
}

/**
 * Composites tile `tile` front to back into the scratch arrays (T, colour, depth, count, last blended index) and,
 * if `out` is given, writes the tile's pixels there. ids[start, end) must already be depth-sorted.
 * With colour-only `out` (ColorPlanes), depth, counts and last indices are not tracked: about a tenth less work
 * per blend, for frames nobody needs more of (videos); the scratch then cannot feed `backwardTile`.
 */
export function blendTile(
  tile: number, cam: CamParams, P: Projected, ids: Int32Array, start: number, end: number,
  bg: ArrayLike<number>, s: TileScratch, out: ImagePlanes | ColorPlanes | null,
): void {
  const full = out === null || 'nBlended' in out;
  const tileW = TILE, tStop = +T_STOP, alphaMax = +ALPHA_MAX, alphaMin = +ALPHA_MIN, table = EXP_TABLE;
  const { width, height, tilesX } = cam;
  const X0 = (tile % tilesX) * tileW, Y0 = Math.floor(tile / tilesX) * tileW;
  const X1 = Math.min(width, X0 + tileW), Y1 = Math.min(height, Y0 + tileW);
  const { st, done, mask } = s;
  for (let p = 0, n = tileW * tileW; p < n; p++) {
    const q = 8 * p;
    st[q] = 1; st[q + 1] = 0; st[q + 2] = 0; st[q + 3] = 0; st[q + 4] = 0; st[q + 5] = 0; st[q + 6] = -1;
  }
  done.fill(0);
  const cols = X1 - X0, rows = Y1 - Y0;
  mask.fill(0);
  for (let y = 0; y < rows; y++) mask[y] = cols === 32 ? -1 : (1 << cols) - 1;
  let active = cols * rows;
  const { proj } = P;
  // The records come in depth order, i.e. scattered in memory: each Gaussian's first and last fields (both cache
  // lines of its record) are read one iteration early, so that the fetch overlaps the previous Gaussian's pixels
  // instead of stalling everything that depends on its position.
  let on = 0, un = 0, vn = 0, eyn = 0, zn = 0;
  if (start < end) { on = 12 * ids[start]; un = proj[on]; vn = proj[on + 1]; eyn = proj[on + 7]; zn = proj[on + 11]; }
  for (let k = start; k < end && active > 0; k++) {
    const o = on, u = un, v = vn, ey = eyn, z = zn;
    if (k + 1 < end) { on = 12 * ids[k + 1]; un = proj[on]; vn = proj[on + 1]; eyn = proj[on + 7]; zn = proj[on + 11]; }
    const y0 = Math.max(Y0, Math.ceil(v - 0.5 - ey)), y1 = Math.min(Y1 - 1, Math.floor(v - 0.5 + ey));
    if (y0 > y1) continue;
    const A = proj[o + 2], B = proj[o + 3], C = proj[o + 4], op = proj[o + 5], kk = proj[o + 6];
    // Per row, rowSpan gives the pixels that can reach alpha ≥ 1/255; the pmin test and the exact one below decide.
    const pmin = -0.5 * kk - 1e-6;
    const invA = 1 / A, disc1 = B * B - A * C, disc0 = A * (kk + 4e-6), uc = u - 0.5;
    const r = proj[o + 8], g = proj[o + 9], b = proj[o + 10];
    // Hoisted factors, bit-identical to the reference expressions: −0.5·A·dx² is (−0.5·A)·dx·dx, and the pixel
    // centre X0 + bit + 0.5 is exact either way.
    const hA = -0.5 * A, cx0 = X0 + 0.5;
    for (let y = y0; y <= y1; y++) {
      const m0 = mask[y - Y0];
      if (m0 === 0) continue;
      const dy = v - (y + 0.5);
      let m = m0 & rowSpan(dy, disc1, disc0, invA, uc, B, X0, X1);
      if (m === 0) continue;
      const row = (y - Y0) * tileW;
      const hy = -0.5 * C * dy * dy;
      while (m !== 0) {
        const bit = 31 - Math.clz32(m & -m);
        m &= m - 1;
        const dx = u - (cx0 + bit);
        const power = hA * dx * dx + hy - B * dx * dy;
        if (power > 0 || power < pmin) continue;
        let alpha = op * expNeg(table, -power);
        if (alpha > alphaMax) alpha = alphaMax;
        if (alpha < alphaMin) continue;
        const p = row + bit, q = 8 * p;
        const Tp = st[q];
        const test = Tp * (1 - alpha);
        if (test < tStop) { done[p] = 2; mask[y - Y0] &= ~(1 << bit); active--; continue; }
        const w = alpha * Tp;
        st[q + 1] += r * w; st[q + 2] += g * w; st[q + 3] += b * w;
        st[q] = test;
        if (full) { st[q + 4] += z * w; st[q + 5] += 1; st[q + 6] = k; }
      }
    }
  }
  if (out === null) return;
  const plane = width * height;
  for (let y = Y0; y < Y1; y++) {
    for (let x = X0; x < X1; x++) {
      const p = (y - Y0) * tileW + x - X0, q = y * width + x, o = 8 * p, Tp = st[o];
      out.rgb[q] = st[o + 1] + Tp * bg[0];
      out.rgb[plane + q] = st[o + 2] + Tp * bg[1];
      out.rgb[2 * plane + q] = st[o + 3] + Tp * bg[2];
      out.alpha[q] = 1 - Tp;
    }
  }
  if (!('nBlended' in out)) return;
  for (let y = Y0; y < Y1; y++) {
    for (let x = X0; x < X1; x++) {
      const p = (y - Y0) * tileW + x - X0, q = y * width + x, o = 8 * p;
      out.depth[q] = st[o + 4];
      out.nBlended[q] = st[o + 5];
      out.terminated[q] = done[p] === 2 ? 1 : 0;
    }
  }
}

/**
 * Reverse pass for one tile, after `blendTile` filled the scratch for it. Accumulates into `grad2d` (stride 9 per
 * Gaussian: ∂L/∂mean2d x, y; ∂L/∂conic xx, xy, yy; ∂L/∂opacity; ∂L/∂colour r, g, b) given ∂L/∂rgb (planar) and
 * optionally ∂L/∂alpha. Exact derivatives of the forward, the alpha clamp included (no gradient when clamped).
 */
export function backwardTile(
  tile: number, cam: CamParams, P: Projected, ids: Int32Array, start: number,
  bg: ArrayLike<number>, dRgb: Float32Array, dAlpha: Float32Array | null, s: TileScratch, grad2d: Float32Array | Float64Array,
): void {
  const { width, height, tilesX } = cam;
  const plane = width * height;
  const tileW = TILE, alphaMax = +ALPHA_MAX, alphaMin = +ALPHA_MIN, table = EXP_TABLE;
  const X0 = (tile % tilesX) * tileW, Y0 = Math.floor(tile / tilesX) * tileW;
  const X1 = Math.min(width, X0 + tileW), Y1 = Math.min(height, Y0 + tileW);
  const { last, st } = s;
  for (let p = 0; p < TPX; p++) last[p] = st[8 * p + 6];
  // Per pixel, interleaved in `st` (8 slots): T (from the final transmittance back to each Gaussian's), the
  // suffix colour S = Σ_{later} c·α·T + T_final·bg (3), the upstream ∂L/∂rgb (3), T_final·∂L/∂alpha.
  let kmax = -1;
  for (let y = Y0; y < Y1; y++) {
    for (let x = X0; x < X1; x++) {
      const p = (y - Y0) * tileW + x - X0, q = y * width + x, o = 8 * p, Tp = st[o];
      st[o + 1] = Tp * bg[0]; st[o + 2] = Tp * bg[1]; st[o + 3] = Tp * bg[2];
      st[o + 4] = dRgb[q]; st[o + 5] = dRgb[plane + q]; st[o + 6] = dRgb[2 * plane + q];
      st[o + 7] = dAlpha === null ? 0 : dAlpha[q] * Tp;
      if (last[p] > kmax) kmax = last[p];
    }
  }
  const { proj } = P;
  // Pixel p takes part from k = last[p] downwards: bucket the pixels by last[p] and switch their bits on as k
  // reaches it.
  const mask = s.mask;
  mask.fill(0);
  const span = kmax - start + 1;
  if (span <= 0) return;
  if (s.bucket.length < span) s.bucket = new Int32Array(Math.max(span, 2 * s.bucket.length));
  const bucket = s.bucket, next = s.next;
  bucket.fill(-1, 0, span);
  for (let p = 0; p < TPX; p++) {
    const l = last[p];
    if (l < start) continue;
    next[p] = bucket[l - start];
    bucket[l - start] = p;
  }
  for (let k = kmax; k >= start; k--) {
    for (let p = bucket[k - start]; p !== -1; p = next[p]) mask[p >> 4] |= 1 << (p & 15);
    const gi = ids[k], o = 12 * gi;
    const u = proj[o], v = proj[o + 1], ey = proj[o + 7];
    const y0 = Math.max(Y0, Math.ceil(v - 0.5 - ey)), y1 = Math.min(Y1 - 1, Math.floor(v - 0.5 + ey));
    if (y0 > y1) continue;
    const A = proj[o + 2], B = proj[o + 3], C = proj[o + 4], op = proj[o + 5], kk = proj[o + 6];
    // Per row, rowSpan gives the pixels that can reach alpha ≥ 1/255; the pmin test and the exact one below decide.
    const pmin = -0.5 * kk - 1e-6;
    const invA = 1 / A, disc1 = B * B - A * C, disc0 = A * (kk + 4e-6), uc = u - 0.5;
    const r = proj[o + 8], g = proj[o + 9], b = proj[o + 10];
    let dU = 0, dV = 0, dA = 0, dB = 0, dC = 0, dOp = 0, dR = 0, dG = 0, dBl = 0;
    for (let y = y0; y <= y1; y++) {
      const m0 = mask[y - Y0];
      if (m0 === 0) continue;
      const dy = v - (y + 0.5);
      let m = m0 & rowSpan(dy, disc1, disc0, invA, uc, B, X0, X1);
      if (m === 0) continue;
      const row = (y - Y0) * tileW;
      const hy = -0.5 * C * dy * dy;
      while (m !== 0) {
        const bit = 31 - Math.clz32(m & -m);
        m &= m - 1;
        const p = row + bit;
        const dx = u - (X0 + bit + 0.5);
        const power = -0.5 * A * dx * dx + hy - B * dx * dy;
        if (power > 0 || power < pmin) continue;
        const G = expNeg(table, -power);
        const raw = op * G;
        const alpha = raw > alphaMax ? alphaMax : raw;
        if (alpha < alphaMin) continue;
        const q = 8 * p;
        const inv = 1 / (1 - alpha);
        const Ti = st[q] * inv;
        const w = alpha * Ti;
        const gr = st[q + 4], gg = st[q + 5], gb = st[q + 6];
        dR += w * gr; dG += w * gg; dBl += w * gb;
        const dAl = (r * Ti - st[q + 1] * inv) * gr + (g * Ti - st[q + 2] * inv) * gg + (b * Ti - st[q + 3] * inv) * gb + st[q + 7] * inv;
        st[q + 1] += r * w; st[q + 2] += g * w; st[q + 3] += b * w;
        st[q] = Ti;
        if (raw > alphaMax) continue;
        dOp += dAl * G;
        const dp = dAl * alpha;
        dU += dp * (-A * dx - B * dy);
        dV += dp * (-C * dy - B * dx);
        dA += dp * (-0.5 * dx * dx);
        dB += dp * (-dx * dy);
        dC += dp * (-0.5 * dy * dy);
      }
    }
    const o9 = 9 * gi;
    grad2d[o9] += dU; grad2d[o9 + 1] += dV; grad2d[o9 + 2] += dA; grad2d[o9 + 3] += dB; grad2d[o9 + 4] += dC;
    grad2d[o9 + 5] += dOp; grad2d[o9 + 6] += dR; grad2d[o9 + 7] += dG; grad2d[o9 + 8] += dBl;
  }
}
