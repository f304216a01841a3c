/**
 * numpy arrays inside pickles (e.g. a camera rig's `new_cam.pkl`), read through the restricted unpickler: only the
 * globals numpy itself uses to pickle an array, a dtype or a scalar are allowed (under numpy 1's `numpy.core` and
 * numpy 2's `numpy._core` names), each mapped to a stand-in that decodes the raw bytes. Nothing is imported or run.
 */
import { Buildable, PickleError, type GlobalHandler } from './pickle.ts';

/** numpy's dtype stand-in: the type code ('f8', 'i4', …) and, after BUILD, its byte order. */
export class NpDtype extends Buildable {
  byteOrder = '=';
  constructor(readonly code: string) {
    super();
  }
  setState(state: unknown): void {
    // (version, byteorder, subarray, names, fields, elsize, alignment, flags)
    if (!Array.isArray(state) || typeof state[1] !== 'string') throw new PickleError('numpy dtype: unexpected state');
    if (state[3] !== null && state[3] !== undefined) throw new PickleError('numpy structured dtypes are not supported');
    this.byteOrder = state[1];
  }
}

const KINDS: Record<string, { bytes: number; read: (dv: DataView, o: number, le: boolean) => number }> = {
  f8: { bytes: 8, read: (dv, o, le) => dv.getFloat64(o, le) },
  f4: { bytes: 4, read: (dv, o, le) => dv.getFloat32(o, le) },
  f2: { bytes: 2, read: (dv, o, le) => halfToFloat(dv.getUint16(o, le)) },
  i8: { bytes: 8, read: (dv, o, le) => Number(dv.getBigInt64(o, le)) },
  i4: { bytes: 4, read: (dv, o, le) => dv.getInt32(o, le) },
  i2: { bytes: 2, read: (dv, o, le) => dv.getInt16(o, le) },
  i1: { bytes: 1, read: (dv, o) => dv.getInt8(o) },
  u8: { bytes: 8, read: (dv, o, le) => Number(dv.getBigUint64(o, le)) },
  u4: { bytes: 4, read: (dv, o, le) => dv.getUint32(o, le) },
  u2: { bytes: 2, read: (dv, o, le) => dv.getUint16(o, le) },
  u1: { bytes: 1, read: (dv, o) => dv.getUint8(o) },
  b1: { bytes: 1, read: (dv, o) => dv.getUint8(o) },
};

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/** Values of a numeric dtype's raw bytes, as numbers. */
function decode(dtype: NpDtype, raw: Uint8Array, count: number): Float64Array {
  const kind = KINDS[dtype.code];
  if (!kind) throw new PickleError(`numpy dtype ${dtype.code} is not supported (numbers only)`);
  if (raw.length !== count * kind.bytes) throw new PickleError(`numpy array: ${raw.length} bytes for ${count} × ${dtype.code}`);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const le = dtype.byteOrder !== '>';
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = kind.read(dv, i * kind.bytes, le);
  return out;
}

/** A numpy array, its values in C (row-major) order as float64. */
export class NdArray extends Buildable {
  shape: number[] = [];
  data: Float64Array = new Float64Array(0);
  setState(state: unknown): void {
    // (version, shape, dtype, is_fortran, raw bytes)
    if (!Array.isArray(state) || state.length !== 5) throw new PickleError('numpy array: unexpected state');
    const [, shape, dtype, fortran, raw] = state as [unknown, unknown, unknown, unknown, unknown];
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
      throw new PickleError('numpy array: bad shape');
    }
    if (!(dtype instanceof NpDtype)) throw new PickleError('numpy array: bad dtype');
    if (!(raw instanceof Uint8Array)) throw new PickleError('numpy array: object arrays are not supported');
    this.shape = shape as number[];
    const count = this.shape.reduce((a, b) => a * b, 1);
    const values = decode(dtype, raw, count);
    this.data = fortran === true && this.shape.length > 1 ? toRowMajor(values, this.shape) : values;
  }
}

function toRowMajor(values: Float64Array, shape: number[]): Float64Array {
  const n = shape.length;
  const out = new Float64Array(values.length);
  const idx = new Array<number>(n).fill(0);
  for (let c = 0; c < values.length; c++) {
    // c walks the C-order index; f is the same element's position in column-major order.
    let f = 0;
    let mul = 1;
    for (let k = 0; k < n; k++) {
      f += idx[k]! * mul;
      mul *= shape[k]!;
    }
    out[c] = values[f]!;
    for (let k = n - 1; k >= 0; k--) {
      if (++idx[k]! < shape[k]!) break;
      idx[k] = 0;
    }
  }
  return out;
}

/** The allow-list for pickles of plain numeric numpy arrays (plus dicts and lists, which the unpickler knows). */
export function numpyGlobals(): Map<string, GlobalHandler> {
  const g = new Map<string, GlobalHandler>();
  for (const core of ['numpy.core', 'numpy._core']) {
    g.set(`${core}.multiarray._reconstruct`, { call: () => new NdArray() });
    g.set(`${core}.multiarray.scalar`, {
      call: ([dtype, raw]) => {
        if (!(dtype instanceof NpDtype) || !(raw instanceof Uint8Array)) throw new PickleError('numpy scalar: bad arguments');
        return decode(dtype, raw, 1)[0];
      },
    });
  }
  g.set('numpy.ndarray', { value: 'ndarray' });
  g.set('numpy.dtype', {
    call: ([code]) => {
      if (typeof code !== 'string') throw new PickleError('numpy dtype: bad code');
      return new NpDtype(code.replace(/^[<>=|]/, ''));
    },
  });
  g.set('_codecs.encode', {
    call: ([s, enc]) => {
      if (typeof s !== 'string') throw new PickleError('_codecs.encode of a non-string');
      if (enc === 'latin1' || enc === 'latin-1') return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
      return new TextEncoder().encode(s);
    },
  });
  return g;
}
