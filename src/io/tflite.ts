/**
 * A reader for TensorFlow Lite model files: the FlatBuffer layout of tensorflow/lite/schema/schema.fbs read
 * directly (tables through their vtables, vectors, strings, unions), enough to rebuild a float model's graph on the
 * project's runtime — its operators in order, their tensors, options and constant buffers. Quantized models and
 * control flow are out of scope and refused where they would matter.
 */
import { UserError } from '../util/errors.ts';
import { f16BitsToNumber } from './dtypes.ts';

/** The TFLite tensor types this reader hands out as data (schema.fbs `TensorType`). */
const TENSOR_TYPES: Record<number, string> = {
  0: 'float32', 1: 'float16', 2: 'int32', 3: 'uint8', 4: 'int64', 6: 'bool', 7: 'int16', 9: 'int8', 10: 'float64',
};

/** Builtin operator codes (schema.fbs `BuiltinOperator`) that portrait segmentation models use. */
export const BUILTIN_OPS: Record<number, string> = {
  0: 'ADD', 1: 'AVERAGE_POOL_2D', 2: 'CONCATENATION', 3: 'CONV_2D', 4: 'DEPTHWISE_CONV_2D', 6: 'DEQUANTIZE',
  14: 'LOGISTIC', 17: 'MAX_POOL_2D', 18: 'MUL', 19: 'RELU', 21: 'RELU6', 22: 'RESHAPE', 23: 'RESIZE_BILINEAR',
  25: 'SOFTMAX', 34: 'PAD', 39: 'TRANSPOSE', 40: 'MEAN', 41: 'SUB', 67: 'TRANSPOSE_CONV', 97: 'RESIZE_NEAREST_NEIGHBOR',
  117: 'HARD_SWISH', 32: 'CUSTOM',
};

/** One table of a FlatBuffer: fields read through its vtable. */
class Table {
  private readonly vtable: number;
  private readonly vsize: number;
  constructor(private readonly view: DataView, readonly pos: number) {
    this.vtable = pos - view.getInt32(pos, true);
    this.vsize = view.getUint16(this.vtable, true);
  }
  /** Absolute position of field `i`, or 0 when the field is absent (then its default applies). */
  private field(i: number): number {
    const at = 4 + 2 * i;
    if (at >= this.vsize) return 0;
    const off = this.view.getUint16(this.vtable + at, true);
    return off === 0 ? 0 : this.pos + off;
  }
  private deref(p: number): number { return p + this.view.getUint32(p, true); }
  int32(i: number, dflt = 0): number { const p = this.field(i); return p ? this.view.getInt32(p, true) : dflt; }
  int8(i: number, dflt = 0): number { const p = this.field(i); return p ? this.view.getInt8(p) : dflt; }
  uint8(i: number, dflt = 0): number { const p = this.field(i); return p ? this.view.getUint8(p) : dflt; }
  bool(i: number, dflt = false): boolean { const p = this.field(i); return p ? this.view.getUint8(p) !== 0 : dflt; }
  table(i: number): Table | null { const p = this.field(i); return p ? new Table(this.view, this.deref(p)) : null; }
  /** Start and length of a vector field (elements follow the length word). */
  private vector(i: number): { start: number; length: number } | null {
    const p = this.field(i);
    if (!p) return null;
    const v = this.deref(p);
    return { start: v + 4, length: this.view.getUint32(v, true) };
  }
  string(i: number): string | null {
    const v = this.vector(i);
    if (!v) return null;
    return new TextDecoder().decode(new Uint8Array(this.view.buffer, this.view.byteOffset + v.start, v.length));
  }
  int32s(i: number): number[] {
    const v = this.vector(i);
    if (!v) return [];
    return Array.from({ length: v.length }, (_, k) => this.view.getInt32(v.start + 4 * k, true));
  }
  bytes(i: number): Uint8Array {
    const v = this.vector(i);
    if (!v) return new Uint8Array(0);
    return new Uint8Array(this.view.buffer, this.view.byteOffset + v.start, v.length);
  }
  tables(i: number): Table[] {
    const v = this.vector(i);
    if (!v) return [];
    return Array.from({ length: v.length }, (_, k) => new Table(this.view, this.deref(v.start + 4 * k)));
  }
}

export interface TfliteTensor {
  name: string;
  /** NHWC for activations, OHWI for convolution weights, 1HWO for depthwise ones (TFLite's layouts). */
  shape: number[];
  type: string;
  /** The constant's values, for tensors backed by a non-empty buffer (float32 copies). */
  data: Float32Array | Int32Array | null;
}

export interface TfliteOperator {
  /** Builtin name (`CONV_2D`), or the custom code for custom operators. */
  op: string;
  inputs: number[];
  outputs: number[];
  /** The builtin options table, read field by field by whoever knows the operator's schema. */
  options: TfliteOptions | null;
  /** Custom operators' option bytes. */
  custom: Uint8Array;
}

/** A builtin options table: fields by index, as schema.fbs numbers them for that operator. */
export interface TfliteOptions {
  int32(i: number, dflt?: number): number;
  int8(i: number, dflt?: number): number;
  bool(i: number, dflt?: boolean): boolean;
  int32s(i: number): number[];
}

export interface TfliteModel {
  description: string;
  tensors: TfliteTensor[];
  operators: TfliteOperator[];
  inputs: number[];
  outputs: number[];
  /** Metadata entries by name (e.g. TFLITE_METADATA), as raw bytes. */
  metadata: Map<string, Uint8Array>;
}

function tensorData(type: string, raw: Uint8Array): Float32Array | Int32Array | null {
  if (raw.length === 0) return null;
  const copy = raw.slice();
  if (type === 'float32') return new Float32Array(copy.buffer, 0, copy.length / 4);
  if (type === 'int32') return new Int32Array(copy.buffer, 0, copy.length / 4);
  if (type === 'int64') {
    const big = new BigInt64Array(copy.buffer, 0, copy.length / 8);
    return Int32Array.from(big, (v) => Number(v));
  }
  if (type === 'float16') {
    const half = new Uint16Array(copy.buffer, 0, copy.length / 2);
    return Float32Array.from(half, f16BitsToNumber);
  }
  throw new UserError(`this TFLite model stores a constant as ${type}; only float models are supported`);
}

/** Parses a .tflite file's bytes; `what` names the file in errors (never a server path). */
export function readTflite(bytes: Uint8Array, what = 'the model file'): TfliteModel {
  if (bytes.length < 16 || new TextDecoder().decode(bytes.subarray(4, 8)) !== 'TFL3') {
    throw new UserError(
      `${what} is not a TensorFlow Lite model (no TFL3 identifier); reinstall the package that ships it`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    const model = new Table(view, view.getUint32(0, true));
    const codes = model.tables(1).map((c) => {
      // builtin_code (field 3) supersedes the int8 deprecated_builtin_code (field 0) from schema v3a on.
      const code = Math.max(c.int8(0), c.int32(3));
      return code === 32 ? (c.string(1) ?? 'CUSTOM') : (BUILTIN_OPS[code] ?? `BUILTIN_${code}`);
    });
    const buffers = model.tables(4).map((b) => b.bytes(0));
    const graphs = model.tables(2);
    const graph = graphs[0];
    if (!graph || graphs.length !== 1) throw new UserError(`${what} has ${graphs.length} subgraphs; expected one`);
    const tensors = graph.tables(0).map((t): TfliteTensor => {
      const type = TENSOR_TYPES[t.int8(1)] ?? `type ${t.int8(1)}`;
      const raw = buffers[t.int32(2)] ?? new Uint8Array(0);
      return { name: t.string(3) ?? '', shape: t.int32s(0), type, data: tensorData(type, raw) };
    });
    const operators = graph.tables(3).map((o): TfliteOperator => {
      const options = o.table(4);
      const op = codes[o.int32(0)];
      if (op === undefined) throw new UserError(`${what} names an operator code that it does not define`);
      return { op, inputs: o.int32s(1), outputs: o.int32s(2), options, custom: o.bytes(5) };
    });
    const metadata = new Map<string, Uint8Array>();
    for (const m of model.tables(6)) {
      const buf = buffers[m.int32(1)];
      if (buf) metadata.set(m.string(0) ?? '', buf);
    }
    return {
      description: model.string(3) ?? '', tensors, operators, metadata,
      inputs: graph.int32s(1), outputs: graph.int32s(2),
    };
  } catch (e) {
    if (e instanceof UserError) throw e;
    const why = e instanceof Error ? e.message : String(e);
    throw new UserError(`${what} is damaged (${why}); reinstall the package that ships it`);
  }
}
