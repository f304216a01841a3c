/**
 * Test helpers: a minimal reader for the golden safetensors files and closeness checks.
 * (Product code reads weights through src/io; this only serves the golden tests of this folder.)
 */
import { readFileSync } from 'node:fs';
import { f16BitsToNumber } from '../../io/dtypes.ts';

export const GOLDEN = new URL('../../../../shared/golden/', import.meta.url).pathname;

export interface GoldenTensor {
  dtype: string;
  shape: number[];
  /** Values as float64 (I64 read as numbers). */
  data: Float64Array;
}

export interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

export function safetensorsHeader(path: string): Record<string, HeaderEntry> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const h = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, HeaderEntry>;
  delete h.__metadata__;
  return h;
}


export function readSafetensors(path: string): Map<string, GoldenTensor> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, HeaderEntry>;
  const base = 8 + n;
  const out = new Map<string, GoldenTensor>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, end] = e.data_offsets;
    const bytes = buf.subarray(base + b, base + end);
    const count = e.shape.reduce((a, c) => a * c, 1);
    const data = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      switch (e.dtype) {
        case 'F32': data[i] = bytes.readFloatLE(i * 4); break;
        case 'F64': data[i] = bytes.readDoubleLE(i * 8); break;
        case 'F16': data[i] = f16BitsToNumber(bytes.readUInt16LE(i * 2)); break;
        case 'I64': data[i] = Number(bytes.readBigInt64LE(i * 8)); break;
        case 'I32': data[i] = bytes.readInt32LE(i * 4); break;
        case 'U8': data[i] = bytes[i]; break;
        default: throw new Error(`unsupported dtype ${e.dtype} in ${path}`);
      }
    }
    out.set(name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
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
