/**
 * The mouse fork's consistent photometric augmentation (spec mouse.md §6, §8.2), shared by both trainers' mouse
 * datasets: one brightness and one contrast factor per item, applied alike to every view so the views stay
 * consistent with each other. No flips or rotations: a mirrored or rotated view would need its camera changed too.
 */
import type { StreamRng } from './rng.ts';

export interface ViewAugmentation {
  brightness: [number, number];
  contrast: [number, number];
}

/** Brightness ×b, then contrast ×c about the mean of all views, clamped to [0, 1]; b, c uniform in their ranges. */
export function augmentViews(x: Float32Array, a: ViewAugmentation, rng: StreamRng): void {
  const b = a.brightness[0] + rng.next() * (a.brightness[1] - a.brightness[0]);
  const c = a.contrast[0] + rng.next() * (a.contrast[1] - a.contrast[0]);
  let mean = 0;
  for (let i = 0; i < x.length; i++) mean += Math.min(1, x[i]! * b);
  mean /= x.length;
  for (let i = 0; i < x.length; i++) x[i] = Math.min(1, Math.max(0, (Math.min(1, x[i]! * b) - mean) * c + mean));
}

/** Reads a `[low, high]` range; `undefined` gives the fork's default [0.9, 1.1]. */
export function rangeOf(v: unknown, what: string): [number, number] {
  const r = v ?? [0.9, 1.1];
  const ok = Array.isArray(r) && r.length === 2 && r.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!ok || r[0] > r[1])
    throw new RangeError(`${what} must be [low, high], got ${JSON.stringify(v)}`);
  return [r[0] as number, r[1] as number];
}
