/**
 * Test-only helpers for ../shared/golden/gslrm-tiny: its safetensors files (read through src/io) and the
 * element-wise tolerance check of golden README §2.5.
 */
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { SafetensorsFile } from '../../io/safetensors.ts';
import type { GaussianSet } from '../../splat/gaussians.ts';

export const GOLDEN_DIR = fileURLToPath(new URL('../../../../shared/golden/gslrm-tiny/', import.meta.url));

export interface GoldenTensor {
  dtype: string;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

export async function readGoldenSafetensors(name: string): Promise<Map<string, GoldenTensor>> {
  const f = await SafetensorsFile.open(GOLDEN_DIR + name);
  try {
    const out = new Map<string, GoldenTensor>();
    for (const key of f.keys()) {
      const { dtype, shape } = f.info(key);
      const data = await f.read(key);
      if (!(data instanceof Float32Array || data instanceof Float64Array || data instanceof BigInt64Array || data instanceof Int32Array || data instanceof Uint8Array)) {
        throw new Error(`${name}:${key}: unsupported dtype ${dtype}`);
      }
      out.set(key, { dtype, shape, data });
    }
    return out;
  } finally {
    await f.close();
  }
}

export function f32(t: Map<string, GoldenTensor>, key: string): Float32Array {
  const v = t.get(key);
  if (!v || !(v.data instanceof Float32Array)) throw new Error(`golden tensor ${key} missing or not F32`);
  return v.data;
}

/** Asserts |got − ref| ≤ atol + rtol·|ref| element-wise; reports the worst element. Returns the max abs error. */
export function assertClose(got: ArrayLike<number>, ref: ArrayLike<number>, atol: number, rtol: number, what: string): number {
  assert.equal(got.length, ref.length, `${what}: length ${got.length} vs reference ${ref.length}`);
  let worst = -1, worstExcess = -Infinity, maxAbs = 0;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i] - ref[i]);
    if (!(err <= maxAbs)) maxAbs = Number.isNaN(err) ? Infinity : err;
    const excess = (Number.isNaN(err) ? Infinity : err) - (atol + rtol * Math.abs(ref[i]));
    if (excess > worstExcess) { worstExcess = excess; worst = i; }
  }
  assert.ok(worstExcess <= 0, `${what}: element ${worst} is ${got[worst]}, reference ${ref[worst]} (atol ${atol}, rtol ${rtol}); max abs error ${maxAbs}`);
  return maxAbs;
}

/** Decoded Gaussians and ray parameters against golden gaussians.safetensors, at the README's tolerances. */
export function assertGoldenGaussians(g: GaussianSet, pixelT: Float32Array, gauss: Map<string, GoldenTensor>): void {
  assertClose(g.means, f32(gauss, 'xyz'), 1e-4, 0, 'xyz');
  assertClose(g.scales, f32(gauss, 'scaling'), 1e-4, 1e-4, 'scaling');
  assertClose(g.rotations, f32(gauss, 'rotation'), 1e-4, 1e-4, 'rotation');
  assertClose(g.opacities, f32(gauss, 'opacity'), 1e-4, 1e-4, 'opacity');
  assertClose(g.sh, f32(gauss, 'features_dc'), 1e-4, 1e-4, 'features_dc');
  assertClose(pixelT, f32(gauss, 'pixel_t'), 1e-4, 0, 'pixel_t');
}
