/**
 * Contact sheets: a PNG grid with one row per head and one column per view (white background), so that a person
 * can judge the variety of a synthetic set at a glance.
 */
import { compositeRgb, type RgbaImage } from './render.ts';

export interface Thumb {
  width: number;
  height: number;
  /** RGB bytes. */
  rgb: Uint8Array;
}

/** Box-filtered downscale by an integer factor, composited over white. */
export function thumbnail(img: RgbaImage, maxSize: number): Thumb {
  const k = Math.max(1, Math.ceil(Math.max(img.width, img.height) / maxSize));
  const rgb = compositeRgb(img, () => [1, 1, 1]);
  const w = Math.floor(img.width / k), h = Math.floor(img.height / k);
  const out = new Uint8Array(3 * w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let acc = 0;
        for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) acc += rgb[3 * ((y * k + dy) * img.width + x * k + dx) + c];
        out[3 * (y * w + x) + c] = Math.round(acc / (k * k));
      }
    }
  }
  return { width: w, height: h, rgb: out };
}

/** Lays rows of equally sized thumbnails out on a white sheet with a `gap`-pixel gutter; returns RGB bytes. */
export function contactSheet(rows: Thumb[][], gap = 4): Thumb {
  if (rows.length === 0 || rows[0].length === 0) throw new RangeError('contact sheet needs at least one thumbnail');
  const tw = rows[0][0].width, th = rows[0][0].height;
  const cols = Math.max(...rows.map((r) => r.length));
  const width = cols * tw + (cols + 1) * gap;
  const height = rows.length * th + (rows.length + 1) * gap;
  const rgb = new Uint8Array(3 * width * height).fill(255);
  rows.forEach((row, r) => {
    row.forEach((t, c) => {
      if (t.width !== tw || t.height !== th) throw new RangeError('contact sheet thumbnails must share one size');
      const x0 = gap + c * (tw + gap), y0 = gap + r * (th + gap);
      for (let y = 0; y < th; y++) rgb.set(t.rgb.subarray(3 * y * tw, 3 * (y + 1) * tw), 3 * ((y0 + y) * width + x0));
    });
  });
  return { width, height, rgb };
}
