import { resizeBicubicPil } from './image.ts';
import type { RawImage } from './image.ts';

/**
 * FaceLift's "training set face statistics" (spec/pipeline.md §3): in the 512×512 conditioning image the face
 * box's mean side is FACE_SIZE px and its centre is FACE_CENTER (x, y). Boxes are MTCNN boxes.
 */
export const FACE_SIZE = 194.2749650813705;
export const FACE_CENTER: readonly [number, number] = [251.83270369057132, 280.0133630862363];
export const OUTPUT_SIZE = 512;

/** A face box in pixel coordinates of the image it was found in (x1,y1 top-left; x2,y2 bottom-right). */
export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface CropTarget {
  faceSize: number;
  faceCenter: readonly [number, number];
  outputSize: number;
}

export const REFERENCE_TARGET: CropTarget = { faceSize: FACE_SIZE, faceCenter: FACE_CENTER, outputSize: OUTPUT_SIZE };

/** Every number of the reference's `crop_face`, with its Python `int()` truncations (toward zero). */
export interface CropPlan {
  /** r = faceSize / mean box side. */
  ratio: number;
  scaledWidth: number;
  scaledHeight: number;
  /** (int(cx·r), int(cy·r)). */
  scaledCenter: [number, number];
  /** faceCenter − scaledCenter (floats, as in the reference). */
  dx: number;
  dy: number;
  /** Region of the scaled image that is kept (right/bottom exclusive). */
  crop: { left: number; top: number; right: number; bottom: number };
  /** Where the crop's top-left lands on the white canvas. */
  paste: { x: number; y: number };
}

/**
 * The similarity crop of spec §3, steps 2–5, as pure arithmetic: scale the image so the box's mean side becomes
 * `faceSize`, then translate the (truncated) scaled box centre to `faceCenter`.
 */
export function planFaceCrop(width: number, height: number, box: Box, target: CropTarget = REFERENCE_TARGET): CropPlan {
  const side = (box.x2 - box.x1 + (box.y2 - box.y1)) / 2;
  if (!(side > 0) || !Number.isFinite(side)) throw new Error(`face box has no size: ${JSON.stringify(box)}`);
  const cx = (box.x1 + box.x2) / 2;
  const cy = (box.y1 + box.y2) / 2;
  const ratio = target.faceSize / side;
  const scaledWidth = Math.trunc(width * ratio);
  const scaledHeight = Math.trunc(height * ratio);
  if (scaledWidth < 1 || scaledHeight < 1) throw new Error(`face box ${side.toFixed(1)} px is too large for a ${width}×${height} image`);
  const scaledCenter: [number, number] = [Math.trunc(cx * ratio), Math.trunc(cy * ratio)];
  const dx = target.faceCenter[0] - scaledCenter[0];
  const dy = target.faceCenter[1] - scaledCenter[1];
  const n = target.outputSize;
  return {
    ratio, scaledWidth, scaledHeight, scaledCenter, dx, dy,
    crop: {
      left: Math.trunc(Math.max(0, -dx)),
      top: Math.trunc(Math.max(0, -dy)),
      right: Math.trunc(Math.min(scaledWidth, n - dx)),
      bottom: Math.trunc(Math.min(scaledHeight, n - dy)),
    },
    paste: { x: Math.trunc(Math.max(0, dx)), y: Math.trunc(Math.max(0, dy)) },
  };
}

/**
 * Carry out a plan on an RGB image: resize with Pillow-style bicubic (the reference's filter; see
 * `resizeBicubicPil`, within a few levels of Pillow), crop, paste onto a white `outputSize`² canvas.
 */
export async function applyCropPlan(
  rgb: RawImage & { channels: 3 }, plan: CropPlan, outputSize: number = OUTPUT_SIZE,
): Promise<RawImage & { channels: 3 }> {
  const scaled = await resizeBicubicPil(rgb, plan.scaledWidth, plan.scaledHeight);
  const out = new Uint8Array(outputSize * outputSize * 3).fill(255);
  const { left, top, right, bottom } = plan.crop;
  // PIL's paste clips to the canvas; so do we (with the reference's numbers it never has to).
  for (let y = top; y < bottom; y++) {
    const oy = plan.paste.y + (y - top);
    if (oy < 0 || oy >= outputSize) continue;
    for (let x = left; x < right; x++) {
      const ox = plan.paste.x + (x - left);
      if (ox < 0 || ox >= outputSize) continue;
      const s = 3 * (y * scaled.width + x);
      const d = 3 * (oy * outputSize + ox);
      out[d] = scaled.data[s]!;
      out[d + 1] = scaled.data[s + 1]!;
      out[d + 2] = scaled.data[s + 2]!;
    }
  }
  return { data: out, width: outputSize, height: outputSize, channels: 3 };
}

/** Map a point of the input image to the output canvas under a plan (for placing markers and checking). */
export function mapPoint(plan: CropPlan, x: number, y: number): [number, number] {
  return [x * plan.ratio + plan.paste.x - plan.crop.left, y * plan.ratio + plan.paste.y - plan.crop.top];
}
