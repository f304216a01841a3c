/**
 * A reader for MATLAB Level-5 MAT-files (what scipy.io.loadmat reads; the format of MatConvNet's
 * `imagenet-vgg-verydeep-19.mat`): little-endian files, compressed (zlib) or plain variables, numeric arrays,
 * char arrays, cell arrays and struct arrays. Nothing is executed; object, sparse and function-handle classes
 * are refused with an error naming them. Arrays keep MATLAB's column-major order and their dimensions.
 */
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { UserError } from '../util/errors.ts';

export type MatValue = MatNumeric | MatChar | MatCell | MatStruct;
export interface MatNumeric {
  kind: 'numeric';
  dims: number[];
  data: Float64Array | Float32Array;
  className: string;
}
export interface MatChar {
  kind: 'char';
  dims: number[];
  text: string;
}
export interface MatCell {
  kind: 'cell';
  dims: number[];
  items: MatValue[];
}
/** A struct array: `items[k]` is element k (column-major) as a field → value map. */
export interface MatStruct {
  kind: 'struct';
  dims: number[];
  fields: string[];
  items: Array<Map<string, MatValue>>;
}

const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
  UTF8: 16,
  UTF16: 17,
  UTF32: 18,
};
const CLASS_NAMES: Record<number, string> = {
  1: 'cell',
  2: 'struct',
  3: 'object',
  4: 'char',
  5: 'sparse',
  6: 'double',
  7: 'single',
  8: 'int8',
  9: 'uint8',
  10: 'int16',
  11: 'uint16',
  12: 'int32',
  13: 'uint32',
  14: 'int64',
  15: 'uint64',
  16: 'function',
};

class Reader {
  pos = 0;
  constructor(
    readonly buf: Buffer,
    readonly source: string,
  ) {}
  fail(msg: string): never {
    throw new UserError(`${this.source}: ${msg} (not a readable MAT-file?)`);
  }
  /** One data element: its type and a view of its bytes; advances past the padding. */
  element(): { type: number; data: Buffer } {
    if (this.pos + 8 > this.buf.length) this.fail('truncated data element');
    const first = this.buf.readUInt32LE(this.pos);
    if (first >>> 16 !== 0) {
      // small data element: 2-byte size, 2-byte type, 4 bytes of data
      const data = this.buf.subarray(this.pos + 4, this.pos + 4 + (first >>> 16));
      this.pos += 8;
      return { type: first & 0xffff, data };
    }
    const n = this.buf.readUInt32LE(this.pos + 4);
    const start = this.pos + 8;
    if (start + n > this.buf.length) this.fail('data element runs past the end of the file');
    this.pos = first === MI.COMPRESSED ? start + n : start + Math.ceil(n / 8) * 8;
    return { type: first, data: this.buf.subarray(start, start + n) };
  }
}

function numbers(type: number, b: Buffer): Float64Array {
  const n = b.length;
  const dv = new DataView(b.buffer, b.byteOffset, n);
  const get: Record<number, [number, (o: number) => number]> = {
    [MI.INT8]: [1, (o) => dv.getInt8(o)],
    [MI.UINT8]: [1, (o) => dv.getUint8(o)],
    [MI.INT16]: [2, (o) => dv.getInt16(o, true)],
    [MI.UINT16]: [2, (o) => dv.getUint16(o, true)],
    [MI.INT32]: [4, (o) => dv.getInt32(o, true)],
    [MI.UINT32]: [4, (o) => dv.getUint32(o, true)],
    [MI.SINGLE]: [4, (o) => dv.getFloat32(o, true)],
    [MI.DOUBLE]: [8, (o) => dv.getFloat64(o, true)],
    [MI.INT64]: [8, (o) => Number(dv.getBigInt64(o, true))],
    [MI.UINT64]: [8, (o) => Number(dv.getBigUint64(o, true))],
  };
  const g = get[type];
  if (!g) throw new UserError(`MAT-file: numeric data of type ${type} is not supported`);
  const out = new Float64Array(n / g[0]);
  for (let i = 0; i < out.length; i++) out[i] = g[1](i * g[0]);
  return out;
}

/** The contents of a miMATRIX element (flags, dimensions, name, data), read from `r` at its position. */
function matrix(r: Reader): MatValue {
  return namedMatrix(r).value;
}

function namedMatrix(r: Reader): { name: string; value: MatValue } {
  const flags = r.element();
  const cls = flags.data.readUInt32LE(0) & 0xff;
  const complex = (flags.data.readUInt32LE(0) & 0x800) !== 0;
  const dims = [...numbers(MI.INT32, r.element().data)];
  const arrayName = r.element().data.toString('latin1');
  return { name: arrayName, value: matrixBody(r, cls, complex, dims) };
}

function matrixBody(r: Reader, cls: number, complex: boolean, dims: number[]): MatValue {
  const count = dims.reduce((a, b) => a * b, 1);
  const name = CLASS_NAMES[cls] ?? `class ${cls}`;
  switch (name) {
    case 'cell': {
      const items: MatValue[] = [];
      for (let i = 0; i < count; i++) items.push(subMatrix(r));
      return { kind: 'cell', dims, items };
    }
    case 'struct': {
      const len = numbers(MI.INT32, r.element().data)[0]!;
      const raw = r.element().data;
      const fields: string[] = [];
      for (let o = 0; o + len <= raw.length; o += len)
        fields.push(
          raw
            .subarray(o, o + len)
            .toString('latin1')
            .replace(/\0.*$/s, ''),
        );
      const items: Array<Map<string, MatValue>> = [];
      for (let i = 0; i < count; i++) {
        const m = new Map<string, MatValue>();
        for (const f of fields) m.set(f, subMatrix(r));
        items.push(m);
      }
      return { kind: 'struct', dims, fields, items };
    }
    case 'char': {
      if (count === 0) return { kind: 'char', dims, text: '' };
      const e = r.element();
      const text =
        e.type === MI.UTF8 || e.type === MI.UINT8 || e.type === MI.INT8
          ? e.data.toString('utf8')
          : String.fromCharCode(...numbers(e.type, e.data));
      return { kind: 'char', dims, text };
    }
    case 'double':
    case 'single':
    case 'int8':
    case 'uint8':
    case 'int16':
    case 'uint16':
    case 'int32':
    case 'uint32':
    case 'int64':
    case 'uint64': {
      if (complex) throw new UserError('MAT-file: complex arrays are not supported');
      if (count === 0) return { kind: 'numeric', dims, data: new Float64Array(0), className: name };
      const e = r.element();
      const v = numbers(e.type, e.data);
      if (v.length !== count) throw new UserError(`MAT-file: ${name} array of ${count} elements holds ${v.length}`);
      return { kind: 'numeric', dims, data: name === 'single' ? Float32Array.from(v) : v, className: name };
    }
    default:
      throw new UserError(`MAT-file: arrays of MATLAB class "${name}" are not supported`);
  }
}

/** A miMATRIX element nested in a cell or struct. */
function subMatrix(r: Reader): MatValue {
  const start = r.pos;
  const type = r.buf.readUInt32LE(start),
    n = r.buf.readUInt32LE(start + 4);
  if (type !== MI.MATRIX) r.fail(`expected a nested array at byte ${start}, found data type ${type}`);
  if (n === 0) {
    r.pos = start + 8;
    return { kind: 'numeric', dims: [0, 0], data: new Float64Array(0), className: 'double' };
  }
  r.pos = start + 8;
  const v = matrix(r);
  r.pos = start + 8 + Math.ceil(n / 8) * 8;
  return v;
}

/** Every top-level variable of a MAT-file, by name. */
export function readMat(path: string): Map<string, MatValue> {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new UserError(
      `cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
  return parseMat(buf, path);
}

export function parseMat(buf: Buffer, source = 'MAT-file'): Map<string, MatValue> {
  if (buf.length < 128) throw new UserError(`${source}: too short for a MAT-file header`);
  if (
    buf.subarray(0, 6).toString('latin1') === '\x89HDF\r\n' ||
    buf.subarray(512, 516).toString('latin1') === '\x89HDF'
  ) {
    throw new UserError(`${source}: a MATLAB v7.3 (HDF5) file; save it as -v7 or older`);
  }
  const endian = buf.subarray(126, 128).toString('latin1');
  if (endian !== 'IM')
    throw new UserError(
      `${source}: ${endian === 'MI' ? 'big-endian MAT-files are not supported' : 'not a MATLAB 5 MAT-file'}`,
    );
  const out = new Map<string, MatValue>();
  const top = new Reader(buf, source);
  top.pos = 128;
  while (top.pos + 8 <= buf.length) {
    const e = top.element();
    let body = e.data,
      type = e.type;
    if (type === MI.COMPRESSED) {
      let inner: Buffer;
      try {
        inner = inflateSync(e.data);
      } catch (err) {
        throw new UserError(
          `${source}: a compressed variable does not inflate (${(err as Error).message}); the file is damaged or truncated`,
        );
      }
      type = inner.readUInt32LE(0);
      body = inner.subarray(8, 8 + inner.readUInt32LE(4));
    }
    if (type !== MI.MATRIX) continue;
    const { name, value } = namedMatrix(new Reader(body, source));
    out.set(name, value);
  }
  return out;
}
