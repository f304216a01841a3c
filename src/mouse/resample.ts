/**
 * Scaling and shifting an image in one resampling step, so that the transform is known exactly (the intrinsics
 * follow it through geometry.transformIntrinsics): output continuous coordinate u' = s·u + t on both axes, a
 * triangle filter widened by 1/s when shrinking (no aliasing), areas outside the source filled with `fill`.
 */

/** Taps of one output axis: for each output index, source indices and weights (normalised). */
function axisTaps(outSize: number, srcSize: number, s: number, t: number): Array<{ idx: Int32Array; w: Float64Array; outside: number }> {
  const support = Math.max(1, 1 / s);
  const taps = [];
  for (let o = 0; o < outSize; o++) {
    const x = (o + 0.5 - t) / s - 0.5; // source index coordinate of the output pixel's centre
    const lo = Math.ceil(x - support), hi = Math.floor(x + support);
    const idx: number[] = [], w: number[] = [];
    let outside = 0, sum = 0;
    for (let i = lo; i <= hi; i++) {
      const wt = Math.max(0, 1 - Math.abs(i - x) / support);
      if (wt <= 0) continue;
      sum += wt;
      if (i < 0 || i >= srcSize) outside += wt;
      else {
        idx.push(i);
        w.push(wt);
      }
    }
    const norm = sum > 0 ? 1 / sum : 0;
    taps.push({ idx: Int32Array.from(idx), w: Float64Array.from(w, (v) => v * norm), outside: sum > 0 ? outside * norm : 1 });
  }
  return taps;
}

/**
 * `src` (W×H, `channels` interleaved bytes) → an out×out image with u' = s·u + (tx, ty). `fill` has one value per
 * channel.
 */
export function resampleScaleShift(
  src: Uint8Array, W: number, H: number, channels: number,
  s: number, tx: number, ty: number, out: number, fill: readonly number[],
): Uint8Array {
  const xs = axisTaps(out, W, s, tx);
  const ys = axisTaps(out, H, s, ty);
  // Horizontal pass into float rows (only the source rows some output row needs).
  const rowsNeeded = new Set<number>();
  for (const y of ys) for (const i of y.idx) rowsNeeded.add(i);
  const tmp = new Map<number, Float64Array>();
  for (const r of rowsNeeded) {
    const row = new Float64Array(out * channels);
    for (let o = 0; o < out; o++) {
      const { idx, w, outside } = xs[o]!;
      for (let c = 0; c < channels; c++) {
        let acc = outside * fill[c]!;
        for (let k = 0; k < idx.length; k++) acc += w[k]! * src[(r * W + idx[k]!) * channels + c]!;
        row[o * channels + c] = acc;
      }
    }
    tmp.set(r, row);
  }
  const dst = new Uint8Array(out * out * channels);
  for (let o = 0; o < out; o++) {
    const { idx, w, outside } = ys[o]!;
    for (let x = 0; x < out * channels; x++) {
      let acc = outside * fill[x % channels]!;
      for (let k = 0; k < idx.length; k++) acc += w[k]! * tmp.get(idx[k]!)![x]!;
      dst[o * out * channels + x] = Math.max(0, Math.min(255, Math.round(acc)));
    }
  }
  return dst;
}
