/**
 * Pictures of training (spec gslrm.md §9): supervision images — targets on top, renders below, one column per
 * view, the input views first.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { hconcat, planarToImage, vconcat, writePng, type RawImage } from '../../io/image.ts';
import type { Supervision } from './step.ts';

/** A [V, 3, S, S] stack as one row of V images. */
export function viewRow(stack: Float32Array, views: number, size: number): RawImage {
  const plane = 3 * size * size;
  return hconcat(
    Array.from({ length: views }, (_, v) => planarToImage(stack.subarray(v * plane, (v + 1) * plane), size, size)),
  );
}

export async function writeSupervision(dir: string, s: Supervision, uid = 'train'): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const V = s.targets.length / (3 * s.size * s.size);
  const path = join(dir, `supervision_${uid}.png`);
  await writePng(path, vconcat([viewRow(s.targets, V, s.size), viewRow(s.renders, V, s.size)]));
  return path;
}
