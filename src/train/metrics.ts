/**
 * Image metrics as the reference's validation computes them (spec gslrm.md §7.3): PSNR on images clipped to
 * [0, 1], and SSIM as scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5, win_size=11,
 * use_sample_covariance=False, data_range=1, channel_axis=0)`: Gaussian filtering with scipy's 'reflect' borders,
 * the SSIM map averaged after cropping (win_size − 1)/2 pixels from each border, then over channels.
 * Images are planar [C, H, W].
 */

export function psnr(pred: Float32Array, target: Float32Array): number {
  let se = 0;
  for (let i = 0; i < pred.length; i++) {
    const p = Math.min(1, Math.max(0, pred[i]!)),
      t = Math.min(1, Math.max(0, target[i]!));
    se += (p - t) * (p - t);
  }
  return -10 * Math.log10(se / pred.length);
}

const SIGMA = 1.5,
  RADIUS = 5;
const KERNEL = (() => {
  const k = Array.from({ length: 2 * RADIUS + 1 }, (_, i) => Math.exp(-0.5 * ((i - RADIUS) / SIGMA) ** 2));
  const s = k.reduce((a, b) => a + b, 0);
  return k.map((x) => x / s);
})();

/** scipy.ndimage 'reflect' (half-sample symmetric) index. */
function reflect(i: number, n: number): number {
  const period = 2 * n;
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - 1 - j;
  return j;
}

function gaussianFilter(x: Float64Array, H: number, W: number): Float64Array {
  const tmp = new Float64Array(H * W),
    out = new Float64Array(H * W);
  for (let y = 0; y < H; y++) {
    for (let xx = 0; xx < W; xx++) {
      let s = 0;
      for (let k = -RADIUS; k <= RADIUS; k++) s += KERNEL[k + RADIUS]! * x[y * W + reflect(xx + k, W)]!;
      tmp[y * W + xx] = s;
    }
  }
  for (let y = 0; y < H; y++) {
    for (let xx = 0; xx < W; xx++) {
      let s = 0;
      for (let k = -RADIUS; k <= RADIUS; k++) s += KERNEL[k + RADIUS]! * tmp[reflect(y + k, H) * W + xx]!;
      out[y * W + xx] = s;
    }
  }
  return out;
}

/** Mean SSIM over channels of planar [C, H, W] images with data range 1. */
export function ssim(pred: Float32Array, target: Float32Array, C: number, H: number, W: number): number {
  const C1 = 0.01 ** 2,
    C2 = 0.03 ** 2;
  const n = H * W;
  let total = 0;
  for (let c = 0; c < C; c++) {
    const X = Float64Array.from(pred.subarray(c * n, (c + 1) * n));
    const Y = Float64Array.from(target.subarray(c * n, (c + 1) * n));
    const prod = (a: Float64Array, b: Float64Array) => a.map((v, i) => v * b[i]!);
    const ux = gaussianFilter(X, H, W),
      uy = gaussianFilter(Y, H, W);
    const uxx = gaussianFilter(prod(X, X), H, W),
      uyy = gaussianFilter(prod(Y, Y), H, W),
      uxy = gaussianFilter(prod(X, Y), H, W);
    let sum = 0,
      count = 0;
    for (let y = RADIUS; y < H - RADIUS; y++) {
      for (let x = RADIUS; x < W - RADIUS; x++) {
        const i = y * W + x;
        const vx = uxx[i]! - ux[i]! * ux[i]!,
          vy = uyy[i]! - uy[i]! * uy[i]!,
          vxy = uxy[i]! - ux[i]! * uy[i]!;
        const s = ((2 * ux[i]! * uy[i]! + C1) * (2 * vxy + C2)) / ((ux[i]! ** 2 + uy[i]! ** 2 + C1) * (vx + vy + C2));
        sum += s;
        count++;
      }
    }
    total += sum / count;
  }
  return total / C;
}
