/**
 * 8-bit image files over sharp: read any format sharp reads into raw interleaved pixels, write PNG, and convert
 * the rasterizer's planar float images to 8-bit pixels the way FaceLift does (×255, clip to [0, 255], truncate).
 */
import sharp from 'sharp';
import { UserError } from '../util/errors.ts';

/** Interleaved 8-bit pixels, row-major: data[(y·width + x)·channels + c]. */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  data: Uint8Array;
}

function check(img: RawImage): void {
  if (!(Number.isInteger(img.width) && Number.isInteger(img.height) && img.width > 0 && img.height > 0)) {
    throw new RangeError(`image size must be positive integers, got ${img.width}×${img.height}`);
  }
  if (img.data.length !== img.width * img.height * img.channels) {
    throw new RangeError(`image data has ${img.data.length} bytes, expected ${img.width}·${img.height}·${img.channels}`);
  }
}

/** Reads an image file (PNG, JPEG, WebP, …) as 8-bit pixels with its own channel count (1–4). */
export async function readImage(path: string): Promise<RawImage> {
  try {
    const { data, info } = await sharp(path).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: info.channels as RawImage['channels'], data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (err) {
    throw new UserError(`cannot read image ${path}: ${(err as Error).message}`);
  }
}

/** PNG bytes of an 8-bit image. */
export async function encodePng(img: RawImage): Promise<Buffer> {
  check(img);
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length), {
    raw: { width: img.width, height: img.height, channels: img.channels },
  }).png().toBuffer();
}

export async function writePng(path: string, img: RawImage): Promise<void> {
  check(img);
  await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length), {
    raw: { width: img.width, height: img.height, channels: img.channels },
  }).png().toFile(path);
}

/** FaceLift's float → uint8: trunc(clip(v·255, 0, 255)). */
export function toByte(v: number): number {
  const x = v * 255;
  return x >= 255 ? 255 : x > 0 ? Math.trunc(x) : 0;
}

/**
 * A planar float image [C, H, W] (the rasterizer's `rgb`, C = 3) as 8-bit interleaved pixels; with `alpha`
 * ([H, W]) appended as a fourth channel; `channels: 4` without alpha gives opaque RGBA (for video frames).
 */
export function planarToImage(planar: Float32Array, width: number, height: number, opts: { alpha?: Float32Array; channels?: 3 | 4 } = {}): RawImage {
  const n = width * height;
  if (planar.length !== 3 * n) throw new RangeError(`planar image has ${planar.length} values, expected 3·${height}·${width}`);
  const channels = opts.alpha ? 4 : (opts.channels ?? 3);
  const data = new Uint8Array(n * channels);
  for (let p = 0; p < n; p++) {
    data[p * channels] = toByte(planar[p]);
    data[p * channels + 1] = toByte(planar[n + p]);
    data[p * channels + 2] = toByte(planar[2 * n + p]);
    if (channels === 4) data[p * channels + 3] = opts.alpha ? toByte(opts.alpha[p]) : 255;
  }
  return { width, height, channels, data };
}

/** Images of equal height and channel count side by side (FaceLift's multiview.png / output.png rows). */
export function hconcat(images: readonly RawImage[]): RawImage {
  if (images.length === 0) throw new RangeError('hconcat needs at least one image');
  const { height, channels } = images[0];
  for (const im of images) {
    check(im);
    if (im.height !== height || im.channels !== channels) throw new RangeError(`hconcat: images differ in height or channels (${im.height}/${im.channels} vs ${height}/${channels})`);
  }
  const width = images.reduce((a, im) => a + im.width, 0);
  const data = new Uint8Array(width * height * channels);
  let x0 = 0;
  for (const im of images) {
    for (let y = 0; y < height; y++) data.set(im.data.subarray(y * im.width * channels, (y + 1) * im.width * channels), (y * width + x0) * channels);
    x0 += im.width;
  }
  return { width, height, channels, data };
}

/** Images of equal width and channel count stacked top to bottom. */
export function vconcat(images: readonly RawImage[]): RawImage {
  if (images.length === 0) throw new RangeError('vconcat needs at least one image');
  const { width, channels } = images[0];
  for (const im of images) {
    check(im);
    if (im.width !== width || im.channels !== channels) throw new RangeError(`vconcat: images differ in width or channels (${im.width}/${im.channels} vs ${width}/${channels})`);
  }
  const height = images.reduce((a, im) => a + im.height, 0);
  const data = new Uint8Array(width * height * channels);
  let off = 0;
  for (const im of images) { data.set(im.data, off); off += im.data.length; }
  return { width, height, channels, data };
}
