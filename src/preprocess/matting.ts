import { access, constants } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { UserError } from '../util/errors.ts';
import type { CutoutStyle } from './composite.ts';
import { resizeRaw } from './image.ts';
import type { RawImage } from './image.ts';

/** Foreground matting: an RGB image in, a per-pixel alpha in [0, 1] (row-major, width×height) out. */
export interface Matter {
  readonly name: string;
  /** How this model's matte is composited when the caller does not say (default 'rembg', the reference's). */
  readonly cutout?: CutoutStyle;
  matte(rgb: RawImage & { channels: 3 }): Promise<Float32Array>;
}

export type MattingModel = 'u2net' | 'modnet';

/** NCHW float32 network input plus its spatial size. */
export interface NetInput {
  data: Float32Array;
  width: number;
  height: number;
}

export const U2NET_SIZE = 320;
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
export const MODNET_REF_SIZE = 512;

/** Where each model comes from. The weights module downloads `file` of `repo` into its cache (never at install). */
export interface MattingModelSource {
  kind: MattingModel;
  /** Hugging Face model repo, when there is a known one. */
  repo?: string;
  file: string;
  licence: string;
  approxMB: number;
  description: string;
}

export const MATTING_SOURCES: Record<MattingModel, MattingModelSource> = {
  modnet: {
    kind: 'modnet', repo: 'Xenova/modnet', file: 'onnx/model.onnx', licence: 'Apache-2.0', approxMB: 26,
    description: 'MODNet portrait matting (ONNX export of the official model)',
  },
  u2net: {
    kind: 'u2net', file: 'u2net.onnx', licence: 'Apache-2.0', approxMB: 176,
    description: "U²-Net, rembg's default model (the reference's background remover; distributed as a rembg release asset)",
  },
};

/** MODNet: the smaller download with a known Hugging Face location, and made for portraits. */
export const DEFAULT_MATTING_MODEL: MattingModel = 'modnet';

function howToGet(kind: MattingModel): string {
  const s = MATTING_SOURCES[kind];
  const where = s.repo ? `${s.file} of the Hugging Face repo ${s.repo}` : s.file;
  return `${s.description}, ${s.licence}, ~${s.approxMB} MB: ${where}`;
}

/**
 * rembg's u2net input: LANCZOS resize to 320², divide by the image's maximum value (rembg divides by the max,
 * not by 255), ImageNet mean/std per channel, NCHW.
 */
export async function u2netInput(rgb: RawImage & { channels: 3 }): Promise<NetInput> {
  const small = await resizeRaw(rgb, U2NET_SIZE, U2NET_SIZE, 'lanczos3');
  let max = 0;
  for (const v of small.data) if (v > max) max = v;
  return { data: toNchw(small, (v, c) => (v / Math.max(max, 1e-6) - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!), width: U2NET_SIZE, height: U2NET_SIZE };
}

/**
 * rembg's u2net output: first output's channel 0, min-max rescaled to [0, 1], stored as uint8 by truncation
 * (`(pred*255).astype(uint8)`), then LANCZOS-resized back to the image size.
 */
export async function u2netAlpha(pred: Float32Array, size: number, width: number, height: number): Promise<Float32Array> {
  const plane = pred.subarray(0, size * size);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of plane) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const mask = new Uint8Array(size * size);
  // A constant prediction has no foreground to speak of: keep the whole image (rembg would divide by zero).
  if (!(hi > lo)) mask.fill(255);
  else for (let i = 0; i < mask.length; i++) mask[i] = Math.trunc(((plane[i]! - lo) / (hi - lo)) * 255);
  return unitAlpha(await resizeRaw({ data: mask, width: size, height: size, channels: 1 }, width, height, 'lanczos3'));
}

/**
 * MODNet input size, as the exported model's processor config (Xenova/modnet `preprocessor_config.json`:
 * `shortest_edge` 512, `size_divisibility` 32, bilinear): shorter side scaled to 512, the longer in proportion,
 * both rounded down to a multiple of 32.
 */
export function modnetSize(width: number, height: number, ref: number = MODNET_REF_SIZE): [number, number] {
  const s = ref / Math.min(width, height);
  const w = Math.round(width * s);
  const h = Math.round(height * s);
  return [Math.max(32, w - (w % 32)), Math.max(32, h - (h % 32))];
}

/** MODNet input: resize (bilinear), scale to [-1, 1] (mean 0.5, std 0.5), NCHW. */
export async function modnetInput(rgb: RawImage & { channels: 3 }): Promise<NetInput> {
  const [w, h] = modnetSize(rgb.width, rgb.height);
  const small = await resizeRaw(rgb, w, h, 'linear');
  return { data: toNchw(small, (v) => (v / 255 - 0.5) / 0.5), width: w, height: h };
}

/** MODNet output: the matte is already in [0, 1]; clamp, quantise to 8 bits, resize back. */
export async function modnetAlpha(pred: Float32Array, w: number, h: number, width: number, height: number): Promise<Float32Array> {
  const mask = new Uint8Array(w * h);
  for (let i = 0; i < mask.length; i++) mask[i] = Math.round(Math.min(1, Math.max(0, pred[i]!)) * 255);
  return unitAlpha(await resizeRaw({ data: mask, width: w, height: h, channels: 1 }, width, height, 'linear'));
}

/** A u2net or MODNet ONNX model run on onnxruntime-node (CPU). */
export class OnnxMatter implements Matter {
  readonly name: string;
  private constructor(private readonly session: ort.InferenceSession, readonly kind: MattingModel, readonly modelPath: string) {
    this.name = `${kind} (${modelPath})`;
  }

  /** Open a model file; a missing or unreadable file is a `UserError` that says how to get one. */
  static async open(kind: MattingModel, modelPath: string): Promise<OnnxMatter> {
    try {
      await access(modelPath, constants.R_OK);
    } catch {
      throw new UserError(
        `matting model not found at ${modelPath}; it is ${howToGet(kind)}. Let the weights module fetch it ` +
        `(facelift weights download) or put the file there yourself`,
      );
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelPath);
    } catch (e) {
      throw new UserError(`${modelPath} is not a usable ONNX ${kind} model: ${String((e as Error).message).split('\n')[0]}`, { cause: e });
    }
    return new OnnxMatter(session, kind, modelPath);
  }

  async matte(rgb: RawImage & { channels: 3 }): Promise<Float32Array> {
    const input = this.kind === 'u2net' ? await u2netInput(rgb) : await modnetInput(rgb);
    const feeds = { [this.session.inputNames[0]!]: new ort.Tensor('float32', input.data, [1, 3, input.height, input.width]) };
    const outputs = await this.session.run(feeds);
    const out = outputs[this.session.outputNames[0]!]!;
    const pred = out.data as Float32Array;
    if (pred.length < input.width * input.height) {
      throw new Error(`${this.kind} model returned ${out.dims.join('×')}, expected a ${input.height}×${input.width} matte`);
    }
    return this.kind === 'u2net'
      ? u2netAlpha(pred, input.width, rgb.width, rgb.height)
      : modnetAlpha(pred, input.width, input.height, rgb.width, rgb.height);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function toNchw(img: RawImage & { channels: 3 }, f: (v: number, c: number) => number): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) out[c * n + i] = f(img.data[3 * i + c]!, c);
  }
  return out;
}

function unitAlpha(img: RawImage): Float32Array {
  const out = new Float32Array(img.width * img.height);
  for (let i = 0; i < out.length; i++) out[i] = img.data[i]! / 255;
  return out;
}
