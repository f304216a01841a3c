/**
 * The CLIP image preprocessing of the inference pipeline (transformers 4.44 `CLIPImageProcessor`, configured by
 * `feature_extractor/preprocessor_config.json`): resize the shortest side to `size` with Pillow's filter
 * (result quantised to uint8), centre-crop to `crop_size`, then `float32(u8·rescale_factor)` and
 * `(x − mean)/std` in float32. Output NCHW float32 pixel values for the CLIP vision tower.
 */
import { UserError } from '../util/errors.ts';
import { JsonFields } from './json-fields.ts';
import { PIL_RESAMPLE_CODES, pilResize, type PilFilter } from './pil-resize.ts';

const f32 = Math.fround;

export interface ClipPreprocessConfig {
  doResize: boolean;
  shortestEdge: number;
  resample: PilFilter;
  doCenterCrop: boolean;
  cropHeight: number;
  cropWidth: number;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  mean: [number, number, number];
  std: [number, number, number];
}

/** Reads a preprocessor config, in the current (`size: {shortest_edge}`) or older (`size: 224`) layout. */
export function parseClipPreprocessConfig(f: JsonFields): ClipPreprocessConfig {
  const sizeRaw = f.raw('size');
  const shortestEdge = typeof sizeRaw === 'number' ? f.int('size') : f.object('size').int('shortest_edge');
  const cropRaw = f.raw('crop_size');
  let cropHeight: number;
  let cropWidth: number;
  if (typeof cropRaw === 'number') cropHeight = cropWidth = f.int('crop_size');
  else {
    const c = f.object('crop_size');
    cropHeight = c.int('height');
    cropWidth = c.int('width');
  }
  const code = f.int('resample', 3, 0);
  const resample = PIL_RESAMPLE_CODES[code];
  if (!resample) f.fail('resample', `a Pillow filter code facelift-ts implements (1 lanczos, 2 bilinear, 3 bicubic)`);
  return {
    doResize: f.bool('do_resize', true),
    shortestEdge,
    resample,
    doCenterCrop: f.bool('do_center_crop', true),
    cropHeight,
    cropWidth,
    doRescale: f.bool('do_rescale', true),
    rescaleFactor: f.num('rescale_factor', 1 / 255),
    doNormalize: f.bool('do_normalize', true),
    mean: f.numArray('image_mean', 3) as [number, number, number],
    std: f.numArray('image_std', 3) as [number, number, number],
  };
}

/** An interleaved 8-bit RGB image, row-major [height, width, 3]. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Output size of "resize the shortest edge to s" (transformers' `get_resize_output_image_size`). */
export function shortestEdgeSize(width: number, height: number, s: number): { width: number; height: number } {
  if (width <= height) return { width: s, height: Math.trunc((s * height) / width) };
  return { width: Math.trunc((s * width) / height), height: s };
}

/** Resize + centre crop, still uint8 (the reference's `clip_resized_u8` when the crop is a no-op). */
export function clipResizeAndCrop(img: RgbImage, cfg: ClipPreprocessConfig): RgbImage {
  if (img.data.length !== img.width * img.height * 3) throw new UserError(`image buffer has ${img.data.length} bytes, expected ${img.width}×${img.height}×3 (RGB)`);
  let cur = img;
  if (cfg.doResize) {
    const size = shortestEdgeSize(img.width, img.height, cfg.shortestEdge);
    cur = { ...size, data: pilResize(img.data, img.width, img.height, 3, size.width, size.height, cfg.resample) };
  }
  if (cfg.doCenterCrop) {
    const top = Math.floor((cur.height - cfg.cropHeight) / 2);
    const left = Math.floor((cur.width - cfg.cropWidth) / 2);
    if (top < 0 || left < 0) {
      throw new UserError(`image of ${cur.width}×${cur.height} after resizing is smaller than the CLIP crop ${cfg.cropWidth}×${cfg.cropHeight}`);
    }
    const out = new Uint8Array(cfg.cropWidth * cfg.cropHeight * 3);
    for (let y = 0; y < cfg.cropHeight; y++) {
      const from = ((top + y) * cur.width + left) * 3;
      out.set(cur.data.subarray(from, from + cfg.cropWidth * 3), y * cfg.cropWidth * 3);
    }
    cur = { width: cfg.cropWidth, height: cfg.cropHeight, data: out };
  }
  return cur;
}

/** CLIP pixel values [3, H, W] (float32) for one image. */
export function clipPixelValues(img: RgbImage, cfg: ClipPreprocessConfig): { pixels: Float32Array; width: number; height: number } {
  const r = clipResizeAndCrop(img, cfg);
  const hw = r.width * r.height;
  const pixels = new Float32Array(3 * hw);
  const mean = cfg.mean.map(f32);
  const std = cfg.std.map(f32);
  for (let i = 0; i < hw; i++) {
    for (let c = 0; c < 3; c++) {
      // float64 multiply then float32 cast (numpy), normalisation in float32.
      let v = cfg.doRescale ? f32(r.data[i * 3 + c] * cfg.rescaleFactor) : r.data[i * 3 + c];
      if (cfg.doNormalize) v = f32(f32(v - mean[c]) / std[c]);
      pixels[c * hw + i] = v;
    }
  }
  return { pixels, width: r.width, height: r.height };
}
