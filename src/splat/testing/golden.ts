/** Test helpers: golden render-tiny / gslrm-tiny scenes and cameras as GaussianSet / Camera. */
import { SafetensorsFile } from '../../io/safetensors.ts';
import { invertRigid, type Camera } from '../../cameras/camera.ts';
import type { GaussianSet } from '../gaussians.ts';

export const GOLDEN = new URL('../../../../shared/golden/', import.meta.url).pathname;

export type Tensors = Map<string, Float32Array | Int32Array | Uint8Array | Float64Array | BigInt64Array>;

/** Every tensor of a golden file (F32/F64/I32/U8/I64 kept as such). */
export async function readAll(path: string): Promise<Tensors> {
  const f = await SafetensorsFile.open(path);
  try {
    const out: Tensors = new Map();
    for (const k of f.keys()) out.set(k, (await f.read(k)) as Float32Array);
    return out;
  } finally {
    await f.close();
  }
}

export function f32(t: Tensors, name: string): Float32Array {
  const v = t.get(name);
  if (!(v instanceof Float32Array)) throw new Error(`golden tensor ${name} missing or not F32`);
  return v;
}

/** Cameras from batched `c2w [V,4,4]` and `fxfycxcy [V,4]`. */
export function goldenCameras(c2w: Float32Array, fxfycxcy: Float32Array, width: number, height: number): Camera[] {
  const n = fxfycxcy.length / 4;
  const cams: Camera[] = [];
  for (let v = 0; v < n; v++) {
    const m = Float64Array.from(c2w.subarray(16 * v, 16 * v + 16));
    const [fx, fy, cx, cy] = fxfycxcy.subarray(4 * v, 4 * v + 4);
    cams.push({ width, height, fx, fy, cx, cy, c2w: m, w2c: invertRigid(m) });
  }
  return cams;
}

export function sceneFrom(t: Tensors, prefix = '', dc = 'features_dc'): GaussianSet {
  const means = f32(t, prefix + 'xyz');
  return {
    count: means.length / 3, shDegree: 0, means,
    scales: f32(t, prefix + 'scaling'), rotations: f32(t, prefix + 'rotation'),
    opacities: f32(t, prefix + 'opacity'), sh: f32(t, prefix + dc),
  };
}

/** max |a − b| and the index where it occurs. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; at: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= max)) { max = d; at = i; }
  }
  return { max, at };
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
