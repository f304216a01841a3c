/**
 * The training step's CLIP input (spec mvdiffusion.md §6.2): the [0, 1] conditioning image resized straight to the
 * encoder's size with torchvision's `TF.resize(…, BICUBIC)` on a float tensor — no centre crop — then normalised
 * with the processor's mean/std. torchvision ≥ 0.17 antialiases tensor resizes by default, which is Pillow's
 * separable bicubic (a = −0.5) with the kernel widened by the scale factor; that is what is computed here
 * (inferred from the versions FaceLift installs, not from a recorded run).
 */

function cubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

/** Weights of the antialiased bicubic resampling from `inSize` to `outSize` samples along one axis. */
function axisWeights(inSize: number, outSize: number): { start: number[]; weights: number[][] } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const start: number[] = [];
  const weights: number[][] = [];
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const lo = Math.max(Math.trunc(center - support + 0.5), 0);
    const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w: number[] = [];
    let sum = 0;
    for (let j = lo; j < hi; j++) {
      const v = cubic((j - center + 0.5) / filterScale);
      w.push(v);
      sum += v;
    }
    start.push(lo);
    weights.push(w.map((v) => (sum === 0 ? 0 : v / sum)));
  }
  return { start, weights };
}

/** Planar [C, H, W] → [C, outH, outW], separable (rows first, then columns). */
export function resizeBicubicAntialias(
  src: Float32Array,
  C: number,
  H: number,
  W: number,
  outH: number,
  outW: number,
): Float32Array {
  const wx = axisWeights(W, outW);
  const wy = axisWeights(H, outH);
  const tmp = new Float32Array(C * H * outW);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < H; y++) {
      const row = c * H * W + y * W;
      for (let x = 0; x < outW; x++) {
        const s = wx.start[x]!,
          w = wx.weights[x]!;
        let acc = 0;
        for (let k = 0; k < w.length; k++) acc += w[k]! * src[row + s + k]!;
        tmp[c * H * outW + y * outW + x] = acc;
      }
    }
  }
  const out = new Float32Array(C * outH * outW);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < outH; y++) {
      const s = wy.start[y]!,
        w = wy.weights[y]!;
      for (let x = 0; x < outW; x++) {
        let acc = 0;
        for (let k = 0; k < w.length; k++) acc += w[k]! * tmp[c * H * outW + (s + k) * outW + x]!;
        out[c * outH * outW + y * outW + x] = acc;
      }
    }
  }
  return out;
}

/** [3, S, S] in [0, 1] → normalised CLIP pixels [1, 3, size, size]. */
export function clipInput(
  image: Float32Array,
  S: number,
  size: number,
  norm: { mean: readonly number[]; std: readonly number[] },
): Float32Array {
  const x = resizeBicubicAntialias(image, 3, S, S, size, size);
  const n = size * size;
  for (let c = 0; c < 3; c++) {
    const m = Math.fround(norm.mean[c]!),
      s = Math.fround(norm.std[c]!);
    for (let i = c * n; i < (c + 1) * n; i++) x[i] = (x[i]! - m) / s;
  }
  return x;
}
