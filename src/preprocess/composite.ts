import type { RawImage } from './image.ts';

/**
 * How colour and alpha are combined on white.
 * - 'straight': out = c·α + 255·(1−α), the textbook "over".
 * - 'rembg': out = c·α² + 255·(1−α). What the reference actually computes: rembg's default cut-out pastes the
 *   photo through the mask onto transparent black (`Image.composite(img, empty, mask)`), which leaves the colour
 *   multiplied by α, and FaceLift then alpha-composites that RGBA over white, multiplying by α again. Only
 *   semi-transparent pixels (hair, edges) differ: they come out darker.
 */
export type CutoutStyle = 'straight' | 'rembg';

/** Composite an RGB image with a [0,1] alpha (width×height) onto white; RGB out. */
export function compositeOnWhite(
  rgb: RawImage & { channels: 3 }, alpha: Float32Array, style: CutoutStyle = 'straight',
): RawImage & { channels: 3 } {
  const n = rgb.width * rgb.height;
  if (alpha.length !== n) throw new Error(`alpha has ${alpha.length} values for a ${rgb.width}×${rgb.height} image`);
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    const a = Math.min(1, Math.max(0, alpha[i]!));
    const k = style === 'rembg' ? a * a : a;
    const bg = 255 * (1 - a);
    for (let c = 0; c < 3; c++) out[3 * i + c] = Math.round(rgb.data[3 * i + c]! * k + bg);
  }
  return { data: out, width: rgb.width, height: rgb.height, channels: 3 };
}
