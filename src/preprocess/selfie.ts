/**
 * Offline background removal with MediaPipe Selfie Segmentation (the "general" 256×256 model, a MobileNetV3-like
 * encoder–decoder): the model file ships in Google's npm package `@mediapipe/selfie_segmentation` (Apache-2.0),
 * is read with our own TFLite reader and run on the compute core. It is the matting model that is always there;
 * MODNet and U²-Net are preferred when present (see pipeline/models.ts).
 *
 * Pre- and post-processing follow MediaPipe's selfie segmentation graph: the whole image stretched to 256² with
 * values in [0, 1], the sigmoid mask upsampled bilinearly back to the image's size.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename } from 'node:path';
import { Session } from '../core/index.ts';
import { readTflite } from '../io/tflite.ts';
import { tfliteGraph } from '../nn/tflite.ts';
import { UserError } from '../util/errors.ts';
import { resizeRaw } from './image.ts';
import type { RawImage } from './image.ts';
import type { Matter } from './matting.ts';

export const SELFIE_PACKAGE = '@mediapipe/selfie_segmentation';
const SELFIE_FILE = 'selfie_segmentation.tflite';
/** How results name the packaged model (not where this machine keeps it). */
export const SELFIE_SOURCE = `npm:${SELFIE_PACKAGE}/${SELFIE_FILE}`;

/** Where the installed package keeps the model, or undefined when the package is not installed. */
export function selfieModelPath(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve(`${SELFIE_PACKAGE}/${SELFIE_FILE}`);
  } catch {
    return undefined;
  }
}

export class SelfieMatter implements Matter {
  readonly name = 'selfie (MediaPipe Selfie Segmentation)';
  /**
   * The reference never ran this model, and rembg's double multiplication by alpha (composite.ts) would turn its
   * wide soft edge into a dark halo: composited the textbook way.
   */
  readonly cutout = 'straight';
  private constructor(private readonly session: Session, private readonly size: [number, number]) {}

  /** Loads the packaged model (or `modelPath`); a missing or broken file says how to get it back. */
  static async open(opts: { modelPath?: string; threads?: number } = {}): Promise<SelfieMatter> {
    const path = opts.modelPath ?? selfieModelPath();
    const reinstall = `reinstall the project's packages (npm ci) or choose another --matting`;
    if (!path) {
      throw new UserError(`the selfie matting model (npm package ${SELFIE_PACKAGE}) is not installed; ${reinstall}`);
    }
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch {
      throw new UserError(`the selfie matting model (${SELFIE_FILE}) could not be read; ${reinstall}`);
    }
    const name = opts.modelPath ? basename(opts.modelPath) : SELFIE_FILE;
    const built = tfliteGraph(readTflite(bytes, name), 'selfie_segmentation');
    const session = await Session.create(built.outputs, {
      params: built.params, provider: 'cpu', ...(opts.threads ? { threads: opts.threads } : {}),
    });
    const [, , h, w] = built.inputShape;
    return new SelfieMatter(session, [h, w]);
  }

  /** The model's mask at its own resolution for a [1, 3, H, W] input in [0, 1]. */
  async mask(input: Float32Array): Promise<Float32Array> {
    const out = await this.session.run({ x: input });
    const first = Object.values(out)[0];
    if (!first) throw new Error('the selfie model returned nothing');
    return first.data as Float32Array;
  }

  /** Model input: the image stretched to the model's size (bilinear), RGB in [0, 1], NCHW. */
  async input(rgb: RawImage & { channels: 3 }): Promise<Float32Array> {
    const [h, w] = this.size;
    const small = await resizeRaw(rgb, w, h, 'linear');
    const n = w * h;
    const out = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[c * n + i] = small.data[3 * i + c]! / 255;
    return out;
  }

  async matte(rgb: RawImage & { channels: 3 }): Promise<Float32Array> {
    const [h, w] = this.size;
    const prob = await this.mask(await this.input(rgb));
    return upsampleMask(prob, w, h, rgb.width, rgb.height);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Bilinear resize of a [0, 1] mask with half-pixel centres, in float (an 8-bit round trip would band the soft edge
 * that the composite keeps).
 */
export function upsampleMask(m: Float32Array, w: number, h: number, width: number, height: number): Float32Array {
  const out = new Float32Array(width * height);
  const sx = w / width;
  const sy = h / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, h - 1);
    const ty = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, w - 1);
      const tx = fx - x0;
      const top = m[y0 * w + x0]! * (1 - tx) + m[y0 * w + x1]! * tx;
      const bottom = m[y1 * w + x0]! * (1 - tx) + m[y1 * w + x1]! * tx;
      out[y * width + x] = top * (1 - ty) + bottom * ty;
    }
  }
  return out;
}
