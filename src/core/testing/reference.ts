/**
 * Plain-TypeScript reference implementations (float64, row-major) that the op tests compare ORT against.
 * Deliberately naive: index arithmetic you can check by eye.
 */
export interface Arr {
  data: Float64Array;
  shape: number[];
}

export const arr = (data: ArrayLike<number>, shape: number[]): Arr => ({ data: Float64Array.from(data), shape: [...shape] });
const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
function strides(s: readonly number[]): number[] {
  const st = new Array<number>(s.length).fill(1);
  for (let i = s.length - 2; i >= 0; i--) st[i] = st[i + 1]! * s[i + 1]!;
  return st;
}
function unravel(i: number, s: readonly number[]): number[] {
  const idx = new Array<number>(s.length);
  for (let k = s.length - 1; k >= 0; k--) { idx[k] = i % s[k]!; i = Math.floor(i / s[k]!); }
  return idx;
}
function broadcastIndex(idx: readonly number[], s: readonly number[]): number {
  const st = strides(s);
  const off = idx.length - s.length;
  let o = 0;
  for (let k = 0; k < s.length; k++) o += (s[k] === 1 ? 0 : idx[k + off]!) * st[k]!;
  return o;
}

export function broadcast(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[a.length - n + i] ?? 1, y = b[b.length - n + i] ?? 1;
    return x === 1 ? y : x;
  });
}

export function binary(a: Arr, b: Arr, f: (x: number, y: number) => number): Arr {
  const shape = broadcast(a.shape, b.shape);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    out[i] = f(a.data[broadcastIndex(idx, a.shape)]!, b.data[broadcastIndex(idx, b.shape)]!);
  }
  return { data: out, shape };
}

export const unary = (a: Arr, f: (x: number) => number): Arr => ({ data: a.data.map(f), shape: [...a.shape] });

export function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse for 1e-5 checks; use the series / continued fraction split.
  const t = Math.abs(x);
  if (t < 2.5) {
    let sum = 0, term = t, n = 0;
    while (Math.abs(term) > 1e-17 * Math.abs(sum) || n < 3) {
      sum += term / (2 * n + 1);
      n++;
      term *= (-t * t) / n;
      if (n > 200) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for large |x|.
  let f = t, c = t, d = 0;
  for (let k = 1; k < 100; k++) {
    const ak = k / 2;
    d = t + ak * d; d = 1 / d;
    c = t + ak / c;
    f *= c * d;
  }
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}
export const gelu = (x: number): number => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluTanh = (x: number): number => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

export function matmul(a: Arr, b: Arr): Arr {
  const m = a.shape.at(-2)!, k = a.shape.at(-1)!, n = b.shape.at(-1)!;
  const batch = broadcast(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const nb = size(batch);
  const out = new Float64Array(nb * m * n);
  for (let bi = 0; bi < nb; bi++) {
    const idx = unravel(bi, batch);
    const ao = broadcastIndex(idx, a.shape.slice(0, -2)) * m * k;
    const bo = broadcastIndex(idx, b.shape.slice(0, -2)) * k * n;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a.data[ao + i * k + t]! * b.data[bo + t * n + j]!;
      out[bi * m * n + i * n + j] = s;
    }
  }
  return { data: out, shape: [...batch, m, n] };
}

export function transpose(a: Arr, perm: readonly number[]): Arr {
  const shape = perm.map((p) => a.shape[p]!);
  const st = strides(a.shape);
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    let o = 0;
    perm.forEach((p, k) => { o += idx[k]! * st[p]!; });
    out[i] = a.data[o]!;
  }
  return { data: out, shape };
}

/** Reduces `axes` (keepdims) with f over each group of values. */
export function reduce(a: Arr, axes: readonly number[], f: (v: number[]) => number, keepdims = true): Arr {
  const kept = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const groups = new Map<number, number[]>();
  for (let i = 0; i < a.data.length; i++) {
    const o = broadcastIndex(unravel(i, a.shape), kept);
    let g = groups.get(o);
    if (!g) groups.set(o, (g = []));
    g.push(a.data[i]!);
  }
  const out = new Float64Array(size(kept));
  for (const [o, v] of groups) out[o] = f(v);
  return { data: out, shape: keepdims ? kept : a.shape.filter((_, i) => !axes.includes(i)) };
}
export const sum = (v: number[]): number => v.reduce((s, x) => s + x, 0);
export const mean = (v: number[]): number => sum(v) / v.length;
export const max = (v: number[]): number => Math.max(...v);

export function softmax(a: Arr, axis: number): Arr {
  const m = reduce(a, [axis], max);
  const e = binary(a, m, (x, y) => Math.exp(x - y));
  return binary(e, reduce(e, [axis], sum), (x, y) => x / y);
}

export function layerNorm(x: Arr, w: Arr, b: Arr | null, eps: number): Arr {
  const ax = x.shape.length - 1;
  const mu = reduce(x, [ax], mean);
  const xc = binary(x, mu, (p, q) => p - q);
  const v = reduce(unary(xc, (t) => t * t), [ax], mean);
  let y = binary(binary(xc, v, (p, q) => p / Math.sqrt(q + eps)), w, (p, q) => p * q);
  if (b) y = binary(y, b, (p, q) => p + q);
  return y;
}

export function groupNorm(x: Arr, w: Arr, b: Arr, groups: number, eps: number): Arr {
  const [n, c] = x.shape as [number, number];
  const xg = { data: x.data, shape: [n, groups, x.data.length / n / groups] };
  const mu = reduce(xg, [2], mean);
  const xc = binary(xg, mu, (p, q) => p - q);
  const v = reduce(unary(xc, (t) => t * t), [2], mean);
  const y = { data: binary(xc, v, (p, q) => p / Math.sqrt(q + eps)).data, shape: x.shape };
  const cs = [1, c, ...x.shape.slice(2).map(() => 1)];
  return binary(binary(y, { data: w.data, shape: cs }, (p, q) => p * q), { data: b.data, shape: cs }, (p, q) => p + q);
}

export function conv2d(x: Arr, w: Arr, b: Arr | null, stride: number, pad: number, groups: number): Arr {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [o, ci, kh, kw] = w.shape as [number, number, number, number];
  const ho = Math.floor((h + 2 * pad - kh) / stride) + 1, wo = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  const out = new Float64Array(n * o * ho * wo);
  const og = o / groups;
  for (let bn = 0; bn < n; bn++) for (let oc = 0; oc < o; oc++) {
    const gi = Math.floor(oc / og);
    for (let y = 0; y < ho; y++) for (let xx = 0; xx < wo; xx++) {
      let s = b ? b.data[oc]! : 0;
      for (let ic = 0; ic < ci; ic++) for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) {
        const iy = y * stride - pad + ky, ix = xx * stride - pad + kx;
        if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
        s += x.data[((bn * c + gi * ci + ic) * h + iy) * wd + ix]! * w.data[((oc * ci + ic) * kh + ky) * kw + kx]!;
      }
      out[((bn * o + oc) * ho + y) * wo + xx] = s;
    }
  }
  return { data: out, shape: [n, o, ho, wo] };
}

export function upsample2x(x: Arr): Arr {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const out = new Float64Array(n * c * 4 * h * w);
  for (let i = 0; i < out.length; i++) {
    const [bn, cc, y, xx] = unravel(i, [n, c, 2 * h, 2 * w]) as [number, number, number, number];
    out[i] = x.data[((bn * c + cc) * h + (y >> 1)) * w + (xx >> 1)]!;
  }
  return { data: out, shape: [n, c, 2 * h, 2 * w] };
}

export function slice(x: Arr, starts: number[], ends: number[], axes: number[]): Arr {
  const shape = [...x.shape];
  axes.forEach((a, i) => { shape[a] = ends[i]! - starts[i]!; });
  const st = strides(x.shape);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    axes.forEach((a, k) => { idx[a]! += starts[k]!; });
    out[i] = x.data[idx.reduce((s, v, k) => s + v * st[k]!, 0)]!;
  }
  return { data: out, shape };
}

export function concat(xs: Arr[], axis: number): Arr {
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, shape);
    let j = 0;
    while (idx[axis]! >= xs[j]!.shape[axis]!) { idx[axis]! -= xs[j]!.shape[axis]!; j++; }
    const x = xs[j]!;
    out[i] = x.data[idx.reduce((s, v, k) => s + v * strides(x.shape)[k]!, 0)]!;
  }
  return { data: out, shape };
}

export function gather(x: Arr, idx: number[], idxShape: number[], axis: number): Arr {
  const shape = [...x.shape.slice(0, axis), ...idxShape, ...x.shape.slice(axis + 1)];
  const st = strides(x.shape);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) {
    const o = unravel(i, shape);
    const pre = o.slice(0, axis), mid = o.slice(axis, axis + idxShape.length), post = o.slice(axis + idxShape.length);
    const flat = mid.reduce((s, v, k) => s + v * strides(idxShape)[k]!, 0);
    const src = [...pre, idx[flat]!, ...post];
    out[i] = x.data[src.reduce((s, v, k) => s + v * st[k]!, 0)]!;
  }
  return { data: out, shape };
}

/** Unchunked attention: softmax(q kᵀ · scale) v on [B,H,L,D]. */
export function attention(q: Arr, k: Arr, v: Arr, scale: number): Arr {
  const s = unary(matmul(q, transpose(k, [0, 1, 3, 2])), (t) => t * scale);
  return matmul(softmax(s, 3), v);
}

/** Deterministic pseudo-random numbers (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export function randn(r: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
  return out;
}

/** Max |a-b| / (atol + rtol·|b|) ≤ 1 check; returns the worst ratio and where. */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): { worst: number; at: number } {
  let worst = 0, at = -1;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    const r = d === 0 ? 0 : d / (atol + rtol * Math.abs(b[i]!));
    if (!(r <= worst)) { worst = r; at = i; }
  }
  return { worst, at };
}
