/**
 * MTCNN (Zhang et al. 2016) as the reference runs it: facenet-pytorch's `MTCNN.detect` with its defaults
 * (min face 20, thresholds 0.6/0.7/0.7, pyramid factor 0.709; spec/pipeline.md §3). P-, R- and O-Net run on the
 * compute core (one session per pyramid size, fixed batches for the crops); the cascade around them — pyramid with
 * torch's "area" resampling, candidate boxes, NMS, box regression, squaring, clamped crops — is facenet-pytorch's
 * `detect_face`, with float32 rounding where a floor or truncation makes it matter.
 *
 * The weights are facenet-pytorch's `data/{p,r,o}net.pt` (MIT), converted from the original release (MIT); they
 * ship in models/mtcnn with both licences.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  conv2d,
  Graph,
  linear,
  maxPool2d,
  prelu as corePrelu,
  reshape,
  Session,
  softmax,
  transpose,
  type Tensor,
} from '../core/index.ts';
import { TorchFile } from '../io/torch-pt.ts';
import { UserError } from '../util/errors.ts';
import { IDENTITY_CALIBRATION, type DetectedFace, type FaceDetector } from './detect.ts';
import type { RawImage } from './image.ts';

export const MTCNN_DIR = fileURLToPath(new URL('../../models/mtcnn/', import.meta.url));

export interface MtcnnOptions {
  minFaceSize?: number;
  thresholds?: readonly [number, number, number];
  factor?: number;
  threads?: number;
}

type Weights = Map<string, Float32Array>;
const f = Math.fround;
/** Crops per R-/O-Net run (the last batch is padded). */
const BATCH = 16;
/** P-Net output rows per run. */
const STRIP = 48;

/** A candidate: box corners, score, and the regression the network proposed for it. */
interface Cand {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  score: number;
  reg: [number, number, number, number];
}

// ---- the three networks ----------------------------------------------------------------------------------------

function prelu(g: Graph, name: string, x: Tensor): Tensor {
  return corePrelu(x, g.param(`${name}.weight`, [x.shape[1]!]));
}

function conv(g: Graph, name: string, x: Tensor, cin: number, cout: number, k: number): Tensor {
  return conv2d(x, g.param(`${name}.weight`, [cout, cin, k, k]), g.param(`${name}.bias`, [cout]));
}

function dense(g: Graph, name: string, x: Tensor, cin: number, cout: number): Tensor {
  return linear(x, g.param(`${name}.weight`, [cout, cin]), g.param(`${name}.bias`, [cout]));
}

/** Flattened as facenet-pytorch does after permute(0, 3, 2, 1): (W, H, C) order. */
const flattenWHC = (x: Tensor): Tensor => reshape(transpose(x, [0, 3, 2, 1]), [x.shape[0]!, -1]);

function pnet(h: number, w: number): Record<string, Tensor> {
  const g = new Graph('mtcnn_pnet');
  let x = g.input('x', [1, 3, h, w]);
  x = maxPool2d(prelu(g, 'prelu1', conv(g, 'conv1', x, 3, 10, 3)), 2, 2, true);
  x = prelu(g, 'prelu2', conv(g, 'conv2', x, 10, 16, 3));
  x = prelu(g, 'prelu3', conv(g, 'conv3', x, 16, 32, 3));
  return { prob: softmax(conv(g, 'conv4_1', x, 32, 2, 1), 1), reg: conv(g, 'conv4_2', x, 32, 4, 1) };
}

function rnet(n: number): Record<string, Tensor> {
  const g = new Graph('mtcnn_rnet');
  let x = g.input('x', [n, 3, 24, 24]);
  x = maxPool2d(prelu(g, 'prelu1', conv(g, 'conv1', x, 3, 28, 3)), 3, 2, true);
  x = maxPool2d(prelu(g, 'prelu2', conv(g, 'conv2', x, 28, 48, 3)), 3, 2, true);
  x = prelu(g, 'prelu3', conv(g, 'conv3', x, 48, 64, 2));
  const y = prelu(g, 'prelu4', dense(g, 'dense4', flattenWHC(x), 576, 128));
  return { prob: softmax(dense(g, 'dense5_1', y, 128, 2), 1), reg: dense(g, 'dense5_2', y, 128, 4) };
}

function onet(n: number): Record<string, Tensor> {
  const g = new Graph('mtcnn_onet');
  let x = g.input('x', [n, 3, 48, 48]);
  x = maxPool2d(prelu(g, 'prelu1', conv(g, 'conv1', x, 3, 32, 3)), 3, 2, true);
  x = maxPool2d(prelu(g, 'prelu2', conv(g, 'conv2', x, 32, 64, 3)), 3, 2, true);
  x = maxPool2d(prelu(g, 'prelu3', conv(g, 'conv3', x, 64, 64, 3)), 2, 2, true);
  x = prelu(g, 'prelu4', conv(g, 'conv4', x, 64, 128, 2));
  const y = prelu(g, 'prelu5', dense(g, 'dense5', flattenWHC(x), 1152, 256));
  return { prob: softmax(dense(g, 'dense6_1', y, 256, 2), 1), reg: dense(g, 'dense6_2', y, 256, 4) };
}

// ---- the cascade ---------------------------------------------------------------------------------------------------

/**
 * Per-channel summed-area table of an image: any rectangle's sum in four reads, exactly. 8-bit images that cannot
 * overflow 32 bits (up to 16.8 megapixels) use 32-bit integers: half the memory, and on this kind of machine a
 * table's first touch costs more than the arithmetic.
 */
export class IntegralImage {
  /** [C, H+1, W+1]. */
  readonly sums: Uint32Array | Float64Array;
  private constructor(
    readonly c: number,
    readonly h: number,
    readonly w: number,
    maxValue: number,
    reuse?: ArrayBuffer,
  ) {
    const n = c * (h + 1) * (w + 1);
    const Sums = maxValue * h * w <= 0xffffffff ? Uint32Array : Float64Array;
    this.sums = reuse && reuse.byteLength >= n * Sums.BYTES_PER_ELEMENT ? new Sums(reuse, 0, n) : new Sums(n);
    // `fill` writes every entry but each channel's first row and column: a reused table needs their zeros back.
    if (reuse) {
      for (let ch = 0; ch < c; ch++) {
        const base = ch * (h + 1) * (w + 1);
        this.sums.fill(0, base, base + w + 1);
        for (let y = 1; y <= h; y++) this.sums[base + y * (w + 1)] = 0;
      }
    }
  }

  /**
   * From interleaved 8-bit pixels with `c` channels; `reuse` is an earlier table's buffer to fill instead of a new
   * one where it is large enough (fresh pages are what a large table mostly costs).
   */
  static fromInterleaved(data: Uint8Array, c: number, h: number, w: number, reuse?: ArrayBuffer): IntegralImage {
    const ii = new IntegralImage(c, h, w, 255, reuse);
    for (let ch = 0; ch < c; ch++) ii.fill(ch, data, ch, c, w * c);
    return ii;
  }

  /** From a planar float [C, H, W] image. */
  static fromPlanar(img: Float32Array, c: number, h: number, w: number): IntegralImage {
    const ii = new IntegralImage(c, h, w, Infinity);
    for (let ch = 0; ch < c; ch++) ii.fill(ch, img, ch * h * w, 1, w);
    return ii;
  }

  /**
   * Channel ch's table from `src`, whose pixel (y, x) is at start + y·rowStep + x·step. Kept monomorphic per
   * array type by its two callers, which is what keeps a 2048² photo's table at a few tens of milliseconds.
   */
  private fill(ch: number, src: Uint8Array | Float32Array, start: number, step: number, rowStep: number): void {
    const W = this.w + 1,
      S = this.sums,
      base = ch * (this.h + 1) * W;
    for (let y = 0; y < this.h; y++) {
      const above = base + y * W + 1,
        here = above + W;
      let sum = 0;
      for (let x = 0, i = start + y * rowStep; x < this.w; x++, i += step) {
        sum += src[i]!;
        S[here + x] = S[above + x]! + sum;
      }
    }
  }

  /**
   * torch's interpolate(mode='area') (adaptive average pooling: output i averages input [⌊i·n/o⌋, ⌈(i+1)·n/o⌉),
   * in float32 as torch computes the bounds) of the window rows [y, y+hh), cols [x, x+ww) to oh × ow, then
   * `(v − shift) · scale` (the networks' input scaling when asked for).
   */
  resize(y: number, x: number, hh: number, ww: number, oh: number, ow: number, shift = 0, scale = 1): Float32Array {
    return this.resizeRows(y, x, hh, ww, oh, ow, 0, oh, shift, scale);
  }

  /** Output rows [i0, i1) of `resize` only, as a [C, i1 − i0, ow] image. */
  resizeRows(
    y: number,
    x: number,
    hh: number,
    ww: number,
    oh: number,
    ow: number,
    i0: number,
    i1: number,
    shift = 0,
    scale = 1,
  ): Float32Array {
    const out = new Float32Array(this.c * (i1 - i0) * ow);
    const r0 = new Int32Array(oh),
      r1 = new Int32Array(oh),
      c0 = new Int32Array(ow),
      c1 = new Int32Array(ow);
    for (let i = i0; i < i1; i++) {
      r0[i] = y + Math.floor(f((i * hh) / oh));
      r1[i] = y + Math.ceil(f(((i + 1) * hh) / oh));
    }
    for (let j = 0; j < ow; j++) {
      c0[j] = x + Math.floor(f((j * ww) / ow));
      c1[j] = x + Math.ceil(f(((j + 1) * ww) / ow));
    }
    const W = this.w + 1,
      S = this.sums;
    for (let ch = 0, o = 0; ch < this.c; ch++) {
      const base = ch * (this.h + 1) * W;
      for (let i = i0; i < i1; i++) {
        const a = base + r0[i]! * W,
          b = base + r1[i]! * W,
          rows = r1[i]! - r0[i]!;
        for (let j = 0; j < ow; j++, o++) {
          const u = c0[j]!,
            v = c1[j]!;
          const sum = S[b + v]! - S[b + u]! - S[a + v]! + S[a + u]!;
          out[o] = (sum / (rows * (v - u)) - shift) * scale;
        }
      }
    }
    return out;
  }
}

/** torch's interpolate(mode='area') of a whole planar [C, H, W] image. */
export function areaResize(src: Float32Array, c: number, h: number, w: number, oh: number, ow: number): Float32Array {
  return IntegralImage.fromPlanar(src, c, h, w).resize(0, 0, h, w, oh, ow);
}

/** (v − 127.5) · 0.0078125, the networks' input scaling. */
const NORM = [127.5, 0.0078125] as const;

const area = (b: Cand) => (b.x2 - b.x1) * (b.y2 - b.y1);

/** torchvision's nms: highest score first, drop boxes whose IoU with a kept one exceeds `t`. */
export function nms(boxes: readonly Cand[], t: number): Cand[] {
  const order = [...boxes].sort((a, b) => b.score - a.score);
  const keep: Cand[] = [];
  for (const b of order) {
    if (keep.some((k) => iou(k, b) > t)) continue;
    keep.push(b);
  }
  return keep;
}

function iou(a: Cand, b: Cand): number {
  const w = Math.max(0, Math.min(a.x2, b.x2) - Math.max(a.x1, b.x1));
  const h = Math.max(0, Math.min(a.y2, b.y2) - Math.max(a.y1, b.y1));
  const inter = w * h;
  return inter / (area(a) + area(b) - inter);
}

/** facenet-pytorch's numpy NMS with the "Min" overlap (+1 pixel areas), used after O-Net. */
function nmsMin(boxes: readonly Cand[], t: number): Cand[] {
  let order = [...boxes].sort((a, b) => a.score - b.score);
  const keep: Cand[] = [];
  const ar = (b: Cand) => (b.x2 - b.x1 + 1) * (b.y2 - b.y1 + 1);
  while (order.length) {
    const i = order[order.length - 1]!;
    keep.push(i);
    order = order.slice(0, -1).filter((o) => {
      const w = Math.max(0, Math.min(i.x2, o.x2) - Math.max(i.x1, o.x1) + 1);
      const h = Math.max(0, Math.min(i.y2, o.y2) - Math.max(i.y1, o.y1) + 1);
      return (w * h) / Math.min(ar(i), ar(o)) <= t;
    });
  }
  return keep;
}

/** Square boxes around the same centre (side = the longer side). */
function rerec(b: Cand): Cand {
  const h = b.y2 - b.y1,
    w = b.x2 - b.x1,
    l = Math.max(w, h);
  const x1 = b.x1 + w * 0.5 - l * 0.5,
    y1 = b.y1 + h * 0.5 - l * 0.5;
  return { ...b, x1, y1, x2: x1 + l, y2: y1 + l };
}

/** Box regression with +1 pixel sizes (R- and O-Net). */
function bbreg(b: Cand, r: readonly number[]): Cand {
  const w = b.x2 - b.x1 + 1,
    h = b.y2 - b.y1 + 1;
  return { ...b, x1: b.x1 + r[0]! * w, y1: b.y1 + r[1]! * h, x2: b.x2 + r[2]! * w, y2: b.y2 + r[3]! * h };
}

/** The crop a box reads: truncated to integers, clamped to the image (1-based, inclusive as facenet-pytorch). */
function padBox(b: Cand, w: number, h: number): { x: number; y: number; ex: number; ey: number } {
  const t = (v: number) => Math.trunc(f(v));
  return { x: Math.max(1, t(b.x1)), y: Math.max(1, t(b.y1)), ex: Math.min(w, t(b.x2)), ey: Math.min(h, t(b.y2)) };
}

export class MtcnnDetector implements FaceDetector {
  readonly name = 'mtcnn';
  readonly calibration = IDENTITY_CALIBRATION;
  private readonly pnets = new Map<string, Session>();
  /** The last photo's summed-area table, refilled by the next photo that fits in it. */
  private table?: ArrayBuffer;
  private readonly minFace: number;
  private readonly thresholds: readonly [number, number, number];
  private readonly factor: number;

  private constructor(
    private readonly weights: { pnet: Weights; rnet: Weights; onet: Weights },
    private readonly rnet: Session,
    private readonly onet: Session,
    private readonly threads: number | undefined,
    opts: MtcnnOptions,
  ) {
    this.minFace = opts.minFaceSize ?? 20;
    this.thresholds = opts.thresholds ?? [0.6, 0.7, 0.7];
    this.factor = opts.factor ?? 0.709;
  }

  static async load(dir: string = MTCNN_DIR, opts: MtcnnOptions = {}): Promise<MtcnnDetector> {
    const read = async (name: string): Promise<Weights> => {
      let file: TorchFile;
      try {
        file = await TorchFile.open(join(dir, `${name}.pt`));
      } catch (e) {
        throw new UserError(`MTCNN weights ${name}.pt could not be read (${e instanceof Error ? e.message : e}); `
          + 'they ship in models/mtcnn — reinstall the project, or choose --detector ssd');
      }
      try {
        const m = new Map<string, Float32Array>();
        for (const k of file.keys()) m.set(k, await file.readF32(k));
        return m;
      } finally {
        await file.close();
      }
    };
    const weights = { pnet: await read('pnet'), rnet: await read('rnet'), onet: await read('onet') };
    const sess = (outs: Record<string, Tensor>, w: Weights) =>
      Session.create(outs, { params: w, provider: 'cpu', ...(opts.threads ? { threads: opts.threads } : {}) });
    return new MtcnnDetector(
      weights,
      await sess(rnet(BATCH), weights.rnet),
      await sess(onet(BATCH), weights.onet),
      opts.threads,
      opts,
    );
  }

  private async pnetFor(h: number, w: number): Promise<Session> {
    const key = `${h}x${w}`;
    let s = this.pnets.get(key);
    if (!s) {
      s = await Session.create(pnet(h, w), {
        params: this.weights.pnet,
        provider: 'cpu',
        ...(this.threads ? { threads: this.threads } : {}),
      });
      this.pnets.set(key, s);
    }
    return s;
  }

  async detect(rgb: RawImage & { channels: 3 }): Promise<DetectedFace[]> {
    const { width: w, height: h } = rgb;
    const img = IntegralImage.fromInterleaved(rgb.data, 3, h, w, this.table);
    this.table = img.sums.buffer as ArrayBuffer;

    // 1. P-Net over the pyramid: candidates per scale, NMS 0.5 per scale, then 0.7 over all.
    const m = 12 / this.minFace;
    const scales: number[] = [];
    for (let s = m, minl = Math.min(h, w) * m; minl >= 12; s *= this.factor, minl *= this.factor) scales.push(s);
    let cands: Cand[] = [];
    for (const scale of scales) {
      const hs = Math.trunc(h * scale + 1),
        ws = Math.trunc(w * scale + 1);
      const found: Cand[] = [];
      const sc = f(scale);
      for await (const { y0, prob, reg, ph, pw } of this.pnetStrips(img, hs, ws)) {
        for (let y = 0; y < ph; y++) {
          for (let x = 0; x < pw; x++) {
            const p = prob[ph * pw + y * pw + x]!;
            if (!(p >= this.thresholds[0])) continue;
            const at = (k: number) => reg[k * ph * pw + y * pw + x]!;
            const yy = y0 + y;
            found.push({
              x1: Math.floor(f(f(2 * x + 1) / sc)),
              y1: Math.floor(f(f(2 * yy + 1) / sc)),
              x2: Math.floor(f(f(2 * x + 12) / sc)),
              y2: Math.floor(f(f(2 * yy + 12) / sc)),
              score: p,
              reg: [at(0), at(1), at(2), at(3)],
            });
          }
        }
      }
      cands.push(...nms(found, 0.5));
    }
    cands = nms(cands, 0.7).map((b) => {
      const rw = b.x2 - b.x1,
        rh = b.y2 - b.y1;
      return rerec({
        ...b,
        x1: b.x1 + b.reg[0] * rw,
        y1: b.y1 + b.reg[1] * rh,
        x2: b.x2 + b.reg[2] * rw,
        y2: b.y2 + b.reg[3] * rh,
      });
    });

    // 2. R-Net on 24² crops: keep > 0.7, NMS 0.7, regression, squaring.
    const r = await this.refine(this.rnet, img, w, h, cands, 24);
    cands = nms(
      r.filter((x) => x.score > this.thresholds[1]),
      0.7,
    ).map((b) => rerec(bbreg(b, b.reg)));

    // 3. O-Net on 48² crops: keep > 0.7, regression, NMS ("Min" overlap) 0.7.
    const o = await this.refine(this.onet, img, w, h, cands, 48);
    const final = nmsMin(
      o.filter((x) => x.score > this.thresholds[2]).map((b) => bbreg(b, b.reg)),
      0.7,
    );
    return final.map((b) => ({ x1: b.x1, y1: b.y1, x2: b.x2, y2: b.y2, score: b.score }));
  }

  /**
   * P-Net over one pyramid level (the whole image resized to hs × ws), in strips of output rows. P-Net is a
   * fully convolutional net whose output row y sees input rows [2y, 2y + 12), so a strip that starts on an even input
   * row and ends at a row boundary (or at the image's own bottom, for the ceil-mode pooling there) gives exactly the
   * rows the whole level would. Strips keep onnxruntime's buffers small and reused: on a 2048² photo the first level
   * in one piece means hundreds of megabytes of fresh intermediates per run.
   */
  private async *pnetStrips(img: IntegralImage, hs: number, ws: number) {
    const outRows = Math.ceil((hs - 2) / 2) - 4;
    for (let y0 = 0; y0 < outRows; y0 += STRIP) {
      const last = y0 + STRIP >= outRows;
      const i0 = 2 * y0,
        i1 = last ? hs : i0 + 2 * STRIP + 10;
      const x = img.resizeRows(0, 0, img.h, img.w, hs, ws, i0, i1, ...NORM);
      const out = await (await this.pnetFor(i1 - i0, ws)).run({ x });
      const [, , ph, pw] = out.prob!.shape as [number, number, number, number];
      yield { y0, prob: out.prob!.data as Float32Array, reg: out.reg!.data as Float32Array, ph, pw };
    }
  }

  /** Runs R- or O-Net on each box's clamped crop resized to size²; the boxes with their new scores/regression. */
  private async refine(
    net: Session,
    img: IntegralImage,
    w: number,
    h: number,
    boxes: Cand[],
    size: number,
  ): Promise<Cand[]> {
    const ok = boxes.map((b) => ({ b, p: padBox(b, w, h) })).filter(({ p }) => p.ey > p.y - 1 && p.ex > p.x - 1);
    const out: Cand[] = [];
    const per = 3 * size * size;
    for (let start = 0; start < ok.length; start += BATCH) {
      const part = ok.slice(start, start + BATCH);
      const x = new Float32Array(BATCH * per);
      part.forEach(({ p }, k) => {
        x.set(img.resize(p.y - 1, p.x - 1, p.ey - p.y + 1, p.ex - p.x + 1, size, size, ...NORM), k * per);
      });
      const res = await net.run({ x });
      const prob = res.prob!.data as Float32Array,
        reg = res.reg!.data as Float32Array;
      part.forEach(({ b }, k) => {
        const r = (i: number) => reg[k * 4 + i]!;
        out.push({ ...b, score: prob[k * 2 + 1]!, reg: [r(0), r(1), r(2), r(3)] });
      });
    }
    return out;
  }

  async release(): Promise<void> {
    for (const s of this.pnets.values()) await s.release();
    await this.rnet.release();
    await this.onet.release();
  }
}
