/**
 * Reading the posed input views of `facelift reconstruct`: `cam_000.png, cam_001.png, …` in a folder, RGB or
 * RGBA (straight alpha, composited onto white as in data-formats.md §4), as one float stack [V, 3, H, W] in [0, 1].
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { UserError, fsReason } from '../util/errors.ts';

export interface ViewStack {
  views: number;
  height: number;
  width: number;
  /** [V, 3, H, W], values in [0, 1]. */
  rgb: Float32Array;
  files: string[];
}

const VIEW_NAME = /^cam_(\d{3})\.png$/i;

/** Lists `cam_NNN.png` files of a folder in index order; the indices must be 000, 001, … without gaps. */
export function listViewFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new UserError(`cannot read the views folder ${dir}: ${fsReason(e)}`);
  }
  const found = names.filter((n) => VIEW_NAME.test(n)).sort((a, b) => Number(VIEW_NAME.exec(a)![1]) - Number(VIEW_NAME.exec(b)![1]));
  if (found.length === 0) throw new UserError(`${dir} has no cam_000.png, cam_001.png, … images`);
  found.forEach((n, i) => {
    if (Number(VIEW_NAME.exec(n)![1]) !== i) throw new UserError(`${dir}: views must be numbered cam_000.png, cam_001.png, … without gaps; cam_${String(i).padStart(3, '0')}.png is missing`);
  });
  return found.map((n) => join(dir, n));
}

/** Decodes the views; all must have the same size. Alpha, when present, is composited onto white. */
export async function readViews(files: readonly string[]): Promise<ViewStack> {
  let H = 0, W = 0;
  const planes: Float32Array[] = [];
  for (const file of files) {
    let data: Buffer, info: OutputInfo;
    try {
      ({ data, info } = await sharp(file).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true }));
    } catch (e) {
      throw new UserError(`cannot decode ${file}: ${(e as Error).message}`);
    }
    if (planes.length === 0) {
      H = info.height;
      W = info.width;
    } else if (info.width !== W || info.height !== H) {
      throw new UserError(`${file} is ${info.width}×${info.height}, but ${files[0]} is ${W}×${H}; all views must have the same size`);
    }
    planes.push(toPlanar(data, info.channels, H * W));
  }
  const rgb = new Float32Array(files.length * 3 * H * W);
  planes.forEach((p, v) => rgb.set(p, v * 3 * H * W));
  return { views: files.length, height: H, width: W, rgb, files: [...files] };
}

/** Interleaved 8-bit RGB(A) → planar float RGB in [0, 1], alpha blended onto white: rgb·α + (1 − α). */
function toPlanar(data: Buffer, channels: number, n: number): Float32Array {
  const out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) {
    const a = channels === 4 ? data[4 * i + 3] / 255 : 1;
    for (let c = 0; c < 3; c++) out[c * n + i] = (data[channels * i + c] / 255) * a + (1 - a);
  }
  return out;
}
