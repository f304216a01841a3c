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

export interface TileScratch {
  T: Float64Array;
  cr: Float64Array;
  cg: Float64Array;
  cb: Float64Array;
  cd: Float64Array;
  nb: Int32Array;
  last: Int32Array;
  done: Uint8Array;
  // backward
  S0: Float64Array;
  S1: Float64Array;
  S2: Float64Array;
  // sort
  keys: Uint32Array;
  keys2: Uint32Array;
  ids2: Int32Array;
  hist: Int32Array;
  f32: Float32Array;
  u32: Uint32Array;
}

export function allocTileScratch(): TileScratch {
  const f32 = new Float32Array(1);
  return {
    T: new Float64Array(TPX), cr: new Float64Array(TPX), cg: new Float64Array(TPX), cb: new Float64Array(TPX),
    cd: new Float64Array(TPX), nb: new Int32Array(TPX), last: new Int32Array(TPX), done: new Uint8Array(TPX),
    S0: new Float64Array(TPX), S1: new Float64Array(TPX), S2: new Float64Array(TPX),
    keys: new Uint32Array(1024), keys2: new Uint32Array(1024), ids2: new Int32Array(1024), hist: new Int32Array(2048),
    f32, u32: new Uint32Array(f32.buffer),
  };
}

/**
 * Sorts ids[start, end) by view depth, ascending and stable (equal depths keep index order, which the scatter
 * produced). Depths are > 0.2, so their float32 bit patterns order like the values: an LSD radix sort on them.
 */
export function sortTile(ids: Int32Array, start: number, end: number, depth: Float32Array, s: TileScratch): void {
  const n = end - start;
  if (n < 2) return;
  if (s.keys.length < n) {
    const cap = Math.max(n, 2 * s.keys.length);
    s.keys = new Uint32Array(cap); s.keys2 = new Uint32Array(cap); s.ids2 = new Int32Array(cap);
  }
  const keys = s.keys, u32 = s.u32, f32 = s.f32;
  for (let k = 0; k < n; k++) { f32[0] = depth[ids[start + k]]; keys[k] = u32[0]; }
  if (n <= 48) {
    for (let a = 1; a < n; a++) {
      const key = keys[a], id = ids[start + a];
      let b = a - 1;
      while (b >= 0 && keys[b] > key) { keys[b + 1] = keys[b]; ids[start + b + 1] = ids[start + b]; b--; }
      keys[b + 1] = key; ids[start + b + 1] = id;
    }
    return;
  }
  // Three 11-bit passes, ping-ponging between (keys, ids[start..]) and (keys2, ids2).
  const hist = s.hist;
  let srcK = keys, dstK = s.keys2;
  let srcI: Int32Array = ids, srcOff = start, dstI: Int32Array = s.ids2, dstOff = 0;
  for (let shift = 0; shift < 33; shift += 11) {
    hist.fill(0);
    for (let k = 0; k < n; k++) hist[(srcK[k] >>> shift) & 2047]++;
    let sum = 0;
    for (let b = 0; b < 2048; b++) { const c = hist[b]; hist[b] = sum; sum += c; }
    for (let k = 0; k < n; k++) {
      const key = srcK[k];
      const pos = hist[(key >>> shift) & 2047]++;
      dstK[pos] = key; dstI[dstOff + pos] = srcI[srcOff + k];
    }
    const tk = srcK; srcK = dstK; dstK = tk;
    const ti = srcI; srcI = dstI; dstI = ti;
    const to = srcOff; srcOff = dstOff; dstOff = to;
  }
  // After an odd number of passes the result is in ids2.
  if (srcI !== ids) ids.set(s.ids2.subarray(0, n), start);
}

/** Forward outputs, image-sized: rgb planar [3, H, W]; alpha, depth, nBlended, terminated [H, W]. */
export interface ImagePlanes {
  rgb: Float32Array;
  alpha: Float32Array;
  depth: Float32Array;
  nBlended: Int32Array;
  terminated: Uint8Array;
}

/**
 * Composites tile `tile` front to back into the scratch arrays (T, colour, depth, count, last blended index) and,
 * if `out` is given, writes the tile's pixels there. ids[start, end) must already be depth-sorted.
 */
export function blendTile(
  tile: number, cam: CamParams, P: Projected, ids: Int32Array, start: number, end: number,
  bg: ArrayLike<number>, s: TileScratch, out: ImagePlanes | null,
): void {
  const { width, height, tilesX } = cam;
  const X0 = (tile % tilesX) * TILE, Y0 = Math.floor(tile / tilesX) * TILE;
  const X1 = Math.min(width, X0 + TILE), Y1 = Math.min(height, Y0 + TILE);
  const { T, cr, cg, cb, cd, nb, last, done } = s;
  T.fill(1); cr.fill(0); cg.fill(0); cb.fill(0); cd.fill(0); nb.fill(0); last.fill(-1); done.fill(0);
  let active = (X1 - X0) * (Y1 - Y0);
  const { proj, color, depth } = P;
  for (let k = start; k < end && active > 0; k++) {
    const gi = ids[k], o = 8 * gi;
    const u = proj[o], v = proj[o + 1], ex = proj[o + 6], ey = proj[o + 7];
    const x0 = Math.max(X0, Math.ceil(u - 0.5 - ex)), x1 = Math.min(X1 - 1, Math.floor(u - 0.5 + ex));
    const y0 = Math.max(Y0, Math.ceil(v - 0.5 - ey)), y1 = Math.min(Y1 - 1, Math.floor(v - 0.5 + ey));
    if (x0 > x1 || y0 > y1) continue;
    const A = proj[o + 2], B = proj[o + 3], C = proj[o + 4], op = proj[o + 5];
    const r = color[3 * gi], g = color[3 * gi + 1], b = color[3 * gi + 2], z = depth[gi];
    for (let y = y0; y <= y1; y++) {
      const dy = v - (y + 0.5);
      const row = (y - Y0) * TILE - X0;
      const hy = -0.5 * C * dy * dy;
      for (let x = x0; x <= x1; x++) {
        const p = row + x;
        if (done[p] !== 0) continue;
        const dx = u - (x + 0.5);
        const power = -0.5 * A * dx * dx + hy - B * dx * dy;
        if (power > 0) continue;
        let alpha = op * Math.exp(power);
        if (alpha > ALPHA_MAX) alpha = ALPHA_MAX;
        if (alpha < ALPHA_MIN) continue;
        const Tp = T[p];
        const test = Tp * (1 - alpha);
        if (test < T_STOP) { done[p] = 2; active--; continue; }
        const w = alpha * Tp;
        cr[p] += r * w; cg[p] += g * w; cb[p] += b * w; cd[p] += z * w;
        T[p] = test; nb[p]++; last[p] = k;
      }
    }
  }
  if (out === null) return;
  const plane = width * height;
  for (let y = Y0; y < Y1; y++) {
    for (let x = X0; x < X1; x++) {
      const p = (y - Y0) * TILE + x - X0, q = y * width + x, Tp = T[p];
      out.rgb[q] = cr[p] + Tp * bg[0];
      out.rgb[plane + q] = cg[p] + Tp * bg[1];
      out.rgb[2 * plane + q] = cb[p] + Tp * bg[2];
      out.alpha[q] = 1 - Tp;
      out.depth[q] = cd[p];
      out.nBlended[q] = nb[p];
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
  const X0 = (tile % tilesX) * TILE, Y0 = Math.floor(tile / tilesX) * TILE;
  const X1 = Math.min(width, X0 + TILE), Y1 = Math.min(height, Y0 + TILE);
  const { T, last, S0, S1, S2 } = s;
  // T holds the final transmittance; reuse cr/cg/cb for the upstream gradient and cd for T_final·∂L/∂alpha.
  const g0 = s.cr, g1 = s.cg, g2 = s.cb, gA = s.cd;
  let kmax = -1;
  for (let y = Y0; y < Y1; y++) {
    for (let x = X0; x < X1; x++) {
      const p = (y - Y0) * TILE + x - X0, q = y * width + x, Tp = T[p];
      g0[p] = dRgb[q]; g1[p] = dRgb[plane + q]; g2[p] = dRgb[2 * plane + q];
      gA[p] = dAlpha === null ? 0 : dAlpha[q] * Tp;
      S0[p] = Tp * bg[0]; S1[p] = Tp * bg[1]; S2[p] = Tp * bg[2];
      if (last[p] > kmax) kmax = last[p];
    }
  }
  const { proj, color } = P;
  for (let k = kmax; k >= start; k--) {
    const gi = ids[k], o = 8 * gi;
    const u = proj[o], v = proj[o + 1], ex = proj[o + 6], ey = proj[o + 7];
    const x0 = Math.max(X0, Math.ceil(u - 0.5 - ex)), x1 = Math.min(X1 - 1, Math.floor(u - 0.5 + ex));
    const y0 = Math.max(Y0, Math.ceil(v - 0.5 - ey)), y1 = Math.min(Y1 - 1, Math.floor(v - 0.5 + ey));
    if (x0 > x1 || y0 > y1) continue;
    const A = proj[o + 2], B = proj[o + 3], C = proj[o + 4], op = proj[o + 5];
    const r = color[3 * gi], g = color[3 * gi + 1], b = color[3 * gi + 2];
    let dU = 0, dV = 0, dA = 0, dB = 0, dC = 0, dOp = 0, dR = 0, dG = 0, dBl = 0;
    for (let y = y0; y <= y1; y++) {
      const dy = v - (y + 0.5);
      const row = (y - Y0) * TILE - X0;
      const hy = -0.5 * C * dy * dy;
      for (let x = x0; x <= x1; x++) {
        const p = row + x;
        if (k > last[p]) continue;
        const dx = u - (x + 0.5);
        const power = -0.5 * A * dx * dx + hy - B * dx * dy;
        if (power > 0) continue;
        const G = Math.exp(power);
        const raw = op * G;
        const alpha = raw > ALPHA_MAX ? ALPHA_MAX : raw;
        if (alpha < ALPHA_MIN) continue;
        const inv = 1 / (1 - alpha);
        const Ti = T[p] * inv;
        const w = alpha * Ti;
        const gr = g0[p], gg = g1[p], gb = g2[p];
        dR += w * gr; dG += w * gg; dBl += w * gb;
        const dAl = (r * Ti - S0[p] * inv) * gr + (g * Ti - S1[p] * inv) * gg + (b * Ti - S2[p] * inv) * gb + gA[p] * inv;
        S0[p] += r * w; S1[p] += g * w; S2[p] += b * w;
        T[p] = Ti;
        if (raw > ALPHA_MAX) continue;
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
