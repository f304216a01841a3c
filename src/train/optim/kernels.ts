/**
 * The per-value loops of an optimizer update, as pure functions over index ranges, so the main thread and the
 * optimizer's worker threads (optim/pool.ts) run the same code on disjoint slices of the same shared buffers.
 *
 * Each update is one pass over a parameter: the reference's gradient rules that touch every value (clip scaling)
 * are fused into it, and the gradient is zeroed as it is consumed, instead of one pass per rule.
 */
import { BLOCK, boundaries, bucket, dynamicMap } from './quant8.ts';

/** Scalars of one AdamW update (torch's formula; see adamw.ts). */
export interface AdamWCoeffs {
  b1: number;
  b2: number;
  /** 1 − lr·weight_decay. */
  decay: number;
  /** lr / (1 − β1ᵗ). */
  stepSize: number;
  /** √(1 − β2ᵗ). */
  corr2: number;
  eps: number;
  /** clip_grad_norm_'s factor, 1 when not clipping; applied to the float32 gradient as torch does in place. */
  gradScale: number;
  /** Zero each gradient value once it is used (the trainer's zero_grad, fused). */
  zeroGrad: boolean;
}

/** NaN → 0, ±Inf → ±1e-3 in place over [from, to), and the sum of squares (float64, in index order) after it. */
export function cleanAndSumSquares(g: Float32Array, from: number, to: number): number {
  let sq = 0;
  for (let i = from; i < to; i++) {
    let x = g[i]!;
    if (!Number.isFinite(x)) {
      g[i] = Number.isNaN(x) ? 0 : x > 0 ? 1e-3 : -1e-3;
      x = g[i]!; // the stored float32, as torch's norm sees it
    }
    sq += x * x;
  }
  return sq;
}

export function adamwFp32(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  from: number,
  to: number,
  c: AdamWCoeffs,
): void {
  const { b1, b2, decay, stepSize, corr2, eps, gradScale } = c;
  const a1 = 1 - b1,
    a2 = 1 - b2,
    scaled = gradScale !== 1;
  for (let i = from; i < to; i++) {
    const gi = scaled ? Math.fround(g[i]! * gradScale) : g[i]!;
    const mi = (m[i] = b1 * m[i]! + a1 * gi);
    const vi = (v[i] = b2 * v[i]! + a2 * gi * gi);
    p[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / corr2 + eps);
  }
  if (c.zeroGrad) g.fill(0, from, to);
}

const CODE1 = dynamicMap(true),
  CODE2 = dynamicMap(false);

/**
 * The bucket of the smallest float32 with each top-16-bit pattern (sign, exponent, 7 mantissa bits). The map's
 * boundaries are spaced so that no such cell of floats holds two of them (the test checks every cell), so a value's
 * bucket is its cell's start or the one after: one comparison, no search (see `fastBucket`).
 */
function startTable(bounds: Float32Array): Uint8Array {
  const t = new Uint8Array(1 << 16);
  const f = new Float32Array(1),
    u = new Uint32Array(f.buffer);
  for (let k = 0; k < 1 << 16; k++) {
    // A negative cell's smallest value has its low mantissa bits set.
    u[0] = k & 0x8000 ? ((k << 16) | 0xffff) >>> 0 : k << 16;
    const x = f[0]!;
    t[k] = Number.isNaN(x) ? 0 : bucket(bounds, x);
  }
  return t;
}

/** The boundaries with +∞ after the last, so that `fastBucket` may look one past any start. */
const padded = (b: Float32Array): Float64Array => Float64Array.from([...b, Infinity]);

const BOUNDS1 = boundaries(CODE1),
  BOUNDS2 = boundaries(CODE2);
const START1 = startTable(BOUNDS1),
  START2 = startTable(BOUNDS2);
const NEXT1 = padded(BOUNDS1),
  NEXT2 = padded(BOUNDS2);
const F32 = new Float32Array(1),
  U32 = new Uint32Array(F32.buffer);

/** The index of x ∈ [−1, 1] in the signed (m) or unsigned (v) dynamic map: = bucket(boundaries(map), x). */
export function mapIndex(signed: boolean, x: number): number {
  return signed ? fastBucket(NEXT1, START1, x) : fastBucket(NEXT2, START2, x);
}

/** x's bucket, as found from the float32 nearest x (the moments are float32 values scaled into [−1, 1]). */
function fastBucket(next: Float64Array, start: Uint8Array, x: number): number {
  F32[0] = x;
  const b = start[U32[0]! >>> 16]!;
  return next[b]! < x ? b + 1 : b;
}

/**
 * bitsandbytes' blockwise 8-bit AdamW over [from, to), which must start on a block boundary: each block of 256 is
 * dequantised, updated in float64 and quantised again with its new absmax.
 */
export function adamw8bit(
  p: Float32Array,
  g: Float32Array,
  q1: Uint8Array,
  absmax1: Float32Array,
  q2: Uint8Array,
  absmax2: Float32Array,
  from: number,
  to: number,
  c: AdamWCoeffs,
): void {
  const { b1, b2, decay, stepSize, corr2, eps, gradScale } = c;
  const a1 = 1 - b1,
    a2 = 1 - b2,
    scaled = gradScale !== 1;
  const m = new Float64Array(BLOCK),
    v = new Float64Array(BLOCK);
  for (let start = from; start < to; start += BLOCK) {
    const end = Math.min(to, start + BLOCK),
      b = start / BLOCK,
      s1 = absmax1[b]!,
      s2 = absmax2[b]!;
    let am1 = 0,
      am2 = 0;
    for (let i = start; i < end; i++) {
      const gi = scaled ? Math.fround(g[i]! * gradScale) : g[i]!,
        k = i - start;
      const mi = (m[k] = b1 * CODE1[q1[i]!]! * s1 + a1 * gi);
      const vi = (v[k] = b2 * CODE2[q2[i]!]! * s2 + a2 * gi * gi);
      p[i] = p[i]! * decay - (stepSize * mi) / (Math.sqrt(vi) / corr2 + eps);
      am1 = Math.max(am1, Math.abs(mi));
      am2 = Math.max(am2, Math.abs(vi));
    }
    am1 = Math.max(Math.fround(am1), 1e-38);
    am2 = Math.max(Math.fround(am2), 1e-38);
    for (let i = start; i < end; i++) {
      const k = i - start;
      q1[i] = fastBucket(NEXT1, START1, Math.min(1, Math.max(-1, m[k]! / am1)));
      q2[i] = fastBucket(NEXT2, START2, Math.min(1, Math.max(-1, v[k]! / am2)));
    }
    absmax1[b] = am1;
    absmax2[b] = am2;
  }
  if (c.zeroGrad) g.fill(0, from, to);
}
