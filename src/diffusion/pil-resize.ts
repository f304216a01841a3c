/**
 * Pillow-compatible resampling of 8-bit images (`Image.resize` with BICUBIC / BILINEAR / LANCZOS, no
 * `reducing_gap`), reproduced from the algorithm Pillow documents and uses: separable convolution with the filter
 * stretched by the down-scaling factor (antialiasing), coefficients normalised in float64, then converted to
 * 22-bit fixed point; a horizontal pass into an 8-bit image, then a vertical pass, each rounding to 8 bits.
 *
 * The CLIP image processor resizes through Pillow and quantises to uint8 before normalising, so a plain bicubic
 * interpolation (or libvips/sharp's) does not give the reference's pixels (pipeline-tiny README §8.8).
 */

export type PilFilter = 'bicubic' | 'bilinear' | 'lanczos';

/** Pillow's numeric `resample` codes as stored in preprocessor configs. */
export const PIL_RESAMPLE_CODES: Record<number, PilFilter> = { 1: 'lanczos', 2: 'bilinear', 3: 'bicubic' };

const FILTERS: Record<PilFilter, { support: number; f: (x: number) => number }> = {
  bilinear: { support: 1, f: (x) => (x < 0 ? -x : x) < 1 ? 1 - Math.abs(x) : 0 },
  bicubic: {
    support: 2,
    f: (x) => {
      // Keys' cubic with a = −0.5.
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: {
    support: 3,
    f: (x) => {
      const sinc = (v: number) => (v === 0 ? 1 : Math.sin(Math.PI * v) / (Math.PI * v));
      return x > -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;

interface Coeffs {
  /** First input index of each output sample. */
  start: Int32Array;
  /** Number of taps of each output sample. */
  count: Int32Array;
  /** Fixed-point weights, `taps` per output sample. */
  weights: Int32Array;
  taps: number;
}

function coefficients(inSize: number, outSize: number, filter: PilFilter): Coeffs {
  const { support: baseSupport, f } = FILTERS[filter];
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = baseSupport * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const k = new Float64Array(taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    // C's (int) truncates toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const w = f((x + xmin - center + 0.5) / filterScale);
      k[x] = w;
      sum += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? k[x] / sum : k[x];
      weights[o * taps + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    start[o] = xmin;
    count[o] = xmax;
  }
  return { start, count, weights, taps };
}

function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Resizes an interleaved 8-bit image [h, w, channels] to [outH, outW, channels] as Pillow does. */
export function pilResize(src: Uint8Array, w: number, h: number, channels: number, outW: number, outH: number, filter: PilFilter): Uint8Array {
  if (src.length !== w * h * channels) throw new Error(`pilResize: buffer has ${src.length} bytes, expected ${w}×${h}×${channels}`);
  let cur = src;
  let curW = w;
  // Horizontal pass first, then vertical, each only when the size changes (as Pillow).
  if (outW !== w) {
    const c = coefficients(w, outW, filter);
    const out = new Uint8Array(outW * h * channels);
    for (let y = 0; y < h; y++) {
      for (let o = 0; o < outW; o++) {
        const s = c.start[o];
        const n = c.count[o];
        for (let ch = 0; ch < channels; ch++) {
          let acc = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < n; x++) acc += cur[(y * w + s + x) * channels + ch] * c.weights[o * c.taps + x];
          out[(y * outW + o) * channels + ch] = clip8(acc);
        }
      }
    }
    cur = out;
    curW = outW;
  }
  if (outH !== h) {
    const c = coefficients(h, outH, filter);
    const out = new Uint8Array(curW * outH * channels);
    for (let o = 0; o < outH; o++) {
      const s = c.start[o];
      const n = c.count[o];
      for (let x = 0; x < curW; x++) {
        for (let ch = 0; ch < channels; ch++) {
          let acc = 1 << (PRECISION_BITS - 1);
          for (let y = 0; y < n; y++) acc += cur[((s + y) * curW + x) * channels + ch] * c.weights[o * c.taps + y];
          out[(o * curW + x) * channels + ch] = clip8(acc);
        }
      }
    }
    cur = out;
  }
  return cur === src ? src.slice() : cur;
}
