/** Small image helpers for the result files (PNG via sharp). */
import sharp from 'sharp';
import type { RasterResult } from '../splat/rasterize.ts';

export interface Rgb8 {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3;
}

export async function writePng(path: string, img: { data: Uint8Array; width: number; height: number; channels: 1 | 3 | 4 }): Promise<void> {
  await sharp(img.data, { raw: { width: img.width, height: img.height, channels: img.channels } }).png().toFile(path);
}

/** Images of equal height side by side, left to right. */
export function hstack(images: readonly Rgb8[]): Rgb8 {
  const H = images[0]!.height;
  if (images.some((im) => im.height !== H)) throw new RangeError('hstack: images differ in height');
  const W = images.reduce((a, im) => a + im.width, 0);
  const data = new Uint8Array(W * H * 3);
  let x0 = 0;
  for (const im of images) {
    for (let y = 0; y < H; y++) data.set(im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3), (y * W + x0) * 3);
    x0 += im.width;
  }
  return { data, width: W, height: H, channels: 3 };
}

/**
 * A render (planar [3, H, W] float, unclamped) → interleaved uint8, as the reference's
 * `(x * 255).clip(0, 255).astype(uint8)` (truncation).
 */
export function planarToRgb8(r: RasterResult): Rgb8 {
  const hw = r.width * r.height;
  const data = new Uint8Array(hw * 3);
  for (let i = 0; i < hw; i++) {
    for (let c = 0; c < 3; c++) {
      const v = r.rgb[c * hw + i]! * 255;
      data[3 * i + c] = v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
    }
  }
  return { data, width: r.width, height: r.height, channels: 3 };
}
