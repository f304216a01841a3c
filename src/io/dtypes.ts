/**
 * Tensor element types, named as safetensors names them, with the typed arrays that hold them.
 * F16 and BF16 have no native JS array: their raw bits are kept in a Uint16Array and converted on demand.
 */
export type DType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export type TensorData =
  | Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface TensorInfo {
  dtype: DType;
  shape: number[];
}

export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A typed array of `dtype` viewing `n` elements of `buf` from byte `byteOffset` (which must be aligned). */
export function typedView(dtype: DType, buf: ArrayBuffer, byteOffset: number, n: number): TensorData {
  switch (dtype) {
    case 'F64': return new Float64Array(buf, byteOffset, n);
    case 'F32': return new Float32Array(buf, byteOffset, n);
    case 'F16': case 'BF16': return new Uint16Array(buf, byteOffset, n);
    case 'I64': return new BigInt64Array(buf, byteOffset, n);
    case 'I32': return new Int32Array(buf, byteOffset, n);
    case 'I16': return new Int16Array(buf, byteOffset, n);
    case 'I8': return new Int8Array(buf, byteOffset, n);
    case 'U8': case 'BOOL': return new Uint8Array(buf, byteOffset, n);
  }
}

/** The dtype a typed array holds; Uint16Array is ambiguous, so `half` says which 16-bit float it carries. */
export function dtypeOfArray(a: TensorData, half: 'F16' | 'BF16' = 'F16'): DType {
  if (a instanceof Float64Array) return 'F64';
  if (a instanceof Float32Array) return 'F32';
  if (a instanceof Uint16Array) return half;
  if (a instanceof BigInt64Array) return 'I64';
  if (a instanceof Int32Array) return 'I32';
  if (a instanceof Int16Array) return 'I16';
  if (a instanceof Int8Array) return 'I8';
  return 'U8';
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits → number (exact). */
export function f16BitsToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** number → IEEE binary16 bits, round to nearest even (as torch's .half() does). */
export function numberToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const f = u32Scratch[0]!;
  const sign = (f >>> 16) & 0x8000;
  const exp = (f >>> 23) & 0xff;
  let mant = f & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rest > half || (rest === half && (r & 1))) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (r & 1))) r++;
  return sign | r;
}

/** bfloat16 bits → number (exact: bf16 is the top half of a float32). */
export function bf16BitsToNumber(b: number): number {
  u32Scratch[0] = b << 16;
  return f32Scratch[0]!;
}

/** number → bfloat16 bits, round to nearest even (NaN stays NaN). */
export function numberToBF16Bits(x: number): number {
  f32Scratch[0] = x;
  const f = u32Scratch[0]!;
  if ((f & 0x7fffffff) > 0x7f800000) return ((f >>> 16) | 0x40) & 0xffff;
  return ((f + 0x7fff + ((f >>> 16) & 1)) >>> 16) & 0xffff;
}

const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = f16BitsToNumber(i);
  return t;
})();

/** Converts any tensor data to float32 (F16/BF16 exactly; F64/I64 rounded to the nearest float32). */
export function toFloat32(dtype: DType, data: TensorData): Float32Array {
  if (dtype === 'F32') return data as Float32Array;
  const n = data.length;
  const out = new Float32Array(n);
  if (dtype === 'F16') {
    const src = data as Uint16Array;
    for (let i = 0; i < n; i++) out[i] = F16_TABLE[src[i]!]!;
  } else if (dtype === 'BF16') {
    const src = data as Uint16Array;
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
  } else if (data instanceof BigInt64Array) {
    for (let i = 0; i < n; i++) out[i] = Number(data[i]!);
  } else {
    out.set(data as ArrayLike<number>);
  }
  return out;
}

/** float32 values → raw F16 or BF16 bits. */
export function float32ToHalfBits(src: ArrayLike<number>, dtype: 'F16' | 'BF16'): Uint16Array {
  const out = new Uint16Array(src.length);
  const conv = dtype === 'F16' ? numberToF16Bits : numberToBF16Bits;
  for (let i = 0; i < src.length; i++) out[i] = conv(src[i]!);
  return out;
}
