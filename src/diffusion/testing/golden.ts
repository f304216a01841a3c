/**
 * Test helpers: the golden safetensors files as float64 values (read through src/io) and closeness checks.
 */
import { bf16BitsToNumber, f16BitsToNumber, type DType, type TensorData } from '../../io/dtypes.ts';
import { SafetensorsFile } from '../../io/safetensors.ts';

export const GOLDEN = new URL('../../../../shared/golden/', import.meta.url).pathname;

export interface GoldenTensor {
  dtype: string;
  shape: number[];
  /** Values as float64 (I64 read as numbers). */
  data: Float64Array;
}

function toFloat64(dtype: DType, raw: TensorData): Float64Array {
  if (raw instanceof BigInt64Array) return Float64Array.from(raw, (v) => Number(v));
  if (dtype === 'F16') return Float64Array.from(raw as Uint16Array, f16BitsToNumber);
  if (dtype === 'BF16') return Float64Array.from(raw as Uint16Array, bf16BitsToNumber);
  return Float64Array.from(raw as ArrayLike<number>);
}

/** Names and shapes of a file's tensors (header only). */
export async function safetensorsShapes(path: string): Promise<Map<string, number[]>> {
  const f = await SafetensorsFile.open(path);
  try {
    return new Map(f.keys().map((k) => [k, f.info(k).shape]));
  } finally {
    await f.close();
  }
}

export async function readSafetensors(path: string): Promise<Map<string, GoldenTensor>> {
  const f = await SafetensorsFile.open(path);
  try {
    const out = new Map<string, GoldenTensor>();
    for (const name of f.keys()) {
      const { dtype, shape } = f.info(name);
      out.set(name, { dtype, shape, data: toFloat64(dtype, await f.read(name)) });
    }
    return out;
  } finally {
    await f.close();
  }
}

export function tensor(m: Map<string, GoldenTensor>, name: string): GoldenTensor {
  const t = m.get(name);
  if (!t) throw new Error(`golden tensor ${name} missing`);
  return t;
}

export function f32(t: GoldenTensor): Float32Array {
  return Float32Array.from(t.data);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
