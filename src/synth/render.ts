/**
 * Rendering heads into the image conventions of FaceLift's training data (data-formats.md §4): straight
 * (non-premultiplied) 8-bit RGBA with soft alpha, RGB = 0 where alpha = 0 (as in the GS-LRM sample), and
 * white-composited RGB for previews and photo-like inputs.
 */
import type { Camera } from '../cameras/camera.ts';
import type { GaussianSet } from '../splat/gaussians.ts';
import { rasterize, type ColorResult } from '../splat/rasterize.ts';

export interface RgbaImage {
  width: number;
  height: number;
  /** Interleaved RGBA, straight alpha. */
  data: Uint8Array;
}

function toByte(v: number): number {
  return v <= 0 ? 0 : v >= 1 ? 255 : Math.round(v * 255);
}

/**
 * Renders over black, so the rasterizer's colour is the premultiplied colour Σcαt; dividing by the coverage
 * α = 1 − T gives the straight colour.
 */
export function renderRgba(g: GaussianSet, camera: Camera): RgbaImage {
  return straightRgba(rasterize(g, camera, { background: BLACK }));
}

/** Render over this background to get premultiplied colour (see straightRgba). */
export const BLACK: readonly [number, number, number] = [0, 0, 0];

/** Straight 8-bit RGBA from a render over black: colour / coverage, RGB = 0 where the coverage rounds to 0. */
export function straightRgba(r: ColorResult): RgbaImage {
  const n = r.width * r.height;
  const data = new Uint8Array(4 * n);
  for (let i = 0; i < n; i++) {
    const a = r.alpha[i];
    const a8 = toByte(a);
    data[4 * i + 3] = a8;
    if (a8 === 0) continue;
    data[4 * i] = toByte(r.rgb[i] / a);
    data[4 * i + 1] = toByte(r.rgb[n + i] / a);
    data[4 * i + 2] = toByte(r.rgb[2 * n + i] / a);
  }
  return { width: r.width, height: r.height, data };
}

/** Composites straight RGBA over a background given per row (a vertical gradient or a flat colour) → RGB bytes. */
export function compositeRgb(img: RgbaImage, background: (row: number) => readonly [number, number, number]): Uint8Array {
  const { width, height, data } = img;
  const out = new Uint8Array(3 * width * height);
  for (let y = 0; y < height; y++) {
    const bg = background(y);
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const a = data[4 * i + 3] / 255;
      for (let c = 0; c < 3; c++) out[3 * i + c] = toByte((data[4 * i + c] / 255) * a + bg[c] * (1 - a));
    }
  }
  return out;
}
