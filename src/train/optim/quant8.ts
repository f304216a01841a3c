/**
 * bitsandbytes' 8-bit blockwise quantisation of optimizer states (facts from bitsandbytes' functional.py and its
 * default/CPU backends): the "dynamic" map of 256 values (`create_dynamic_map`: for each exponent 10^(−6+i),
 * i = 0..6, the midpoints of an even split of [0.1, 1] into 2^i (signed, ± both) or 2^(i+1) (unsigned) parts,
 * plus 0 and 1, sorted); a block of 256 values is scaled by its absolute maximum, clamped to [−1, 1] and each value
 * mapped to the map entry whose midpoint interval holds it (`bucketize` against the midpoints, ties to the lower).
 */

export const BLOCK = 256;

/** bitsandbytes' `create_dynamic_map(signed, max_exponent_bits = 7, total_bits = 8)`, float32 values, sorted. */
export function dynamicMap(signed: boolean): Float32Array {
  const data: number[] = [];
  const f = Math.fround;
  for (let i = 0; i < 7; i++) {
    const items = signed ? 2 ** i + 1 : 2 ** (i + 1) + 1;
    const bounds = linspaceF32(0.1, 1, items);
    const scale = 10 ** (-6 + i);
    for (let k = 0; k + 1 < items; k++) {
      const mean = f(f(bounds[k]! + bounds[k + 1]!) / 2);
      data.push(f(f(scale) * mean));
      if (signed) data.push(f(-f(scale) * mean));
    }
  }
  data.push(0, 1);
  while (data.length < 256) data.push(0);
  return Float32Array.from(data.sort((a, b) => a - b));
}

/** torch.linspace(start, end, n) in float32 (first half from the start, second half from the end). */
function linspaceF32(start: number, end: number, n: number): Float32Array {
  const f = Math.fround;
  const s = f(start),
    e = f(end);
  const step = f(f(e - s) / (n - 1));
  const out = new Float32Array(n);
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) out[i] = i < half ? f(s + f(step * i)) : f(e - f(step * (n - i - 1)));
  return out;
}

/** Midpoints between consecutive map entries (the bucket boundaries). */
export function boundaries(code: Float32Array): Float32Array {
  const b = new Float32Array(code.length - 1);
  for (let i = 0; i + 1 < code.length; i++) b[i] = Math.fround((code[i]! + code[i + 1]!) / 2);
  return b;
}

/** Index of the first boundary ≥ x (torch.bucketize, right = false). */
export function bucket(bounds: Float32Array, x: number): number {
  let lo = 0,
    hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bounds[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
