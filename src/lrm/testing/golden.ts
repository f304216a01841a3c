/**
 * Test-only helpers for ../shared/golden/gslrm-tiny: a minimal reader for its hand-written safetensors files
 * (golden README §1.1: header, then aligned little-endian data) and the element-wise tolerance check of §2.5.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import type { GaussianSet } from '../../splat/gaussians.ts';

export const GOLDEN_DIR = fileURLToPath(new URL('../../../../shared/golden/gslrm-tiny/', import.meta.url));

export interface GoldenTensor {
  dtype: string;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

export function readGoldenSafetensors(name: string): Map<string, GoldenTensor> {
  const buf = readFileSync(GOLDEN_DIR + name);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  // Copy into a fresh, aligned buffer so typed-array views are valid whatever Node's pool offset is.
  const data = new Uint8Array(buf.subarray(8 + n)).buffer;
  const out = new Map<string, GoldenTensor>();
  for (const [key, h] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const [b, e] = h.data_offsets;
    const ctor = { F32: Float32Array, F64: Float64Array, I64: BigInt64Array, I32: Int32Array, U8: Uint8Array }[h.dtype];
    if (!ctor) throw new Error(`${name}:${key}: unsupported dtype ${h.dtype}`);
    out.set(key, { dtype: h.dtype, shape: h.shape, data: new ctor(data, b, (e - b) / ctor.BYTES_PER_ELEMENT) });
  }
  return out;
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
