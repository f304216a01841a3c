/**
 * The graph IR: tensors are symbolic values in one Graph; every node applies one op from the op table
 * (an `OpDef`: shape/dtype rule, ONNX lowering, gradient rule). Nothing runs until the graph is lowered
 * (lower.ts) and executed (session.ts).
 */
import type { AttrValue } from './proto.ts';
import { f16BitsToNumber, numberToF16Bits } from '../io/dtypes.ts';

export type DType = 'float32' | 'float16' | 'int64' | 'int32' | 'bool';
export type Shape = readonly number[];
export type ConstData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;

/** Shape and dtype of a value: what shape rules see and produce. */
export interface TensorInfo {
  readonly shape: Shape;
  readonly dtype: DType;
}

export type Source =
  | { kind: 'input'; name: string }
  | { kind: 'param'; name: string }
  | { kind: 'const'; data: ConstData }
  | { kind: 'node'; node: Node };

export class Tensor implements TensorInfo {
  constructor(
    readonly graph: Graph,
    readonly id: number,
    readonly shape: Shape,
    readonly dtype: DType,
    readonly source: Source,
  ) {}

  get rank(): number { return this.shape.length; }
  get size(): number { return sizeOf(this.shape); }
  toString(): string { return describe(this); }
}

export interface Node {
  readonly id: number;
  /** Methods are checked bivariantly, so every OpDef<A> fits here; attrs are the A it was built with. */
  readonly op: OpDef<unknown>;
  readonly inputs: readonly Tensor[];
  readonly attrs: unknown;
}

/** What a lowering rule uses to emit ONNX nodes. */
export interface Lowerer {
  /** Emits one ONNX node and returns the name of its (first) output. */
  node(opType: string, inputs: readonly string[], attrs?: Record<string, AttrValue>, domain?: string): string;
  /** An int64 1-D initializer (shapes, axes, pads), shared between uses. */
  i64(values: readonly number[]): string;
  /** A scalar initializer of the given dtype. */
  scalar(value: number, dtype: DType): string;
  /** Linear layers with a float32 parameter as weight run in int8 (an inference session's choice). */
  readonly int8Linear: boolean;
  /**
   * A graph input the session derives from a float32 parameter (its int8 form): declared once per name, and
   * filled from the parameter store when the session is created.
   */
  derivedParam(name: string, shape: Shape, dtype: 'int8' | 'float32', derivation: Derivation): string;
}

/** How a derived input is computed from its parameter (core/quantize.ts). */
export interface Derivation {
  readonly from: string;
  readonly form: 'int8-columns' | 'int8-scales';
}

export interface LowerIO {
  readonly ins: readonly TensorInfo[];
  readonly out: TensorInfo;
  /** For each input, the parameter's name when the input is a parameter. */
  readonly paramNames: readonly (string | null)[];
}

/**
 * One entry of the op table. `infer` throws a plain message on invalid inputs; `apply` turns it into a
 * GraphError naming the op and the input shapes. `grad` returns one gradient per input (null: none),
 * written with other ops so that it lowers like any forward code.
 */
export interface OpDef<A> {
  readonly name: string;
  infer(ins: readonly TensorInfo[], attrs: A): TensorInfo;
  lower(b: Lowerer, ins: readonly string[], attrs: A, io: LowerIO): string;
  grad?(gy: Tensor, ins: readonly Tensor[], out: Tensor, attrs: A): readonly (Tensor | null)[];
}

/**
 * The op table: every primitive is registered here once, by name. `Graph.apply` refuses ops that are not in
 * it, so a graph can only ever contain ops whose shape rule, lowering and gradient rule live in one entry.
 */
const OP_TABLE = new Map<string, OpDef<unknown>>();

/** Registers an op-table entry (names are unique) and returns it. */
export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  if (OP_TABLE.has(def.name)) throw new GraphError(`defineOp: an op named "${def.name}" is already in the op table`);
  OP_TABLE.set(def.name, def as OpDef<unknown>);
  return def;
}

/** The registered ops, by name (for listings and tests). */
export function opTable(): ReadonlyMap<string, OpDef<unknown>> {
  return OP_TABLE;
}

export class GraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphError';
  }
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function describe(t: TensorInfo): string {
  return `${t.dtype}[${t.shape.join(',')}]`;
}

export const isFloat = (d: DType): boolean => d === 'float32' || d === 'float16';

export interface ParamInfo {
  readonly name: string;
  readonly shape: Shape;
  readonly dtype: DType;
}

export class Graph {
  private nextId = 0;
  readonly nodes: Node[] = [];
  private readonly named = new Map<string, Tensor>();
  private readonly scalars = new Map<string, Tensor>();

  constructor(readonly name = 'graph') {}

  private newTensor(shape: Shape, dtype: DType, source: Source): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new GraphError(`invalid shape [${shape.join(',')}]: dimensions must be integers ≥ 0`);
    }
    return new Tensor(this, this.nextId++, [...shape], dtype, source);
  }

  private declare(kind: 'input' | 'param', name: string, shape: Shape, dtype: DType): Tensor {
    const prev = this.named.get(name);
    if (prev) {
      if (prev.source.kind === kind && prev.dtype === dtype && sameShape(prev.shape, shape)) return prev;
      throw new GraphError(`${kind} "${name}" declared twice with different kind/shape/dtype: ${describe(prev)} vs ${dtype}[${shape.join(',')}]`);
    }
    const t = this.newTensor(shape, dtype, { kind, name } as Source);
    this.named.set(name, t);
    return t;
  }

  /** A value fed at run time (images, tokens, upstream gradients). */
  input(name: string, shape: Shape, dtype: DType = 'float32'): Tensor { return this.declare('input', name, shape, dtype); }

  /** A named parameter: a graph input whose value comes from the session's parameter store. */
  param(name: string, shape: Shape, dtype: DType = 'float32'): Tensor { return this.declare('param', name, shape, dtype); }

  /** A constant embedded in the model as an initializer (keep these small). */
  constant(data: ConstData, shape: Shape, dtype?: DType): Tensor {
    const dt = dtype ?? dtypeOfData(data);
    if (data.length !== sizeOf(shape)) throw new GraphError(`constant: ${data.length} values for shape [${shape.join(',')}]`);
    return this.newTensor(shape, dt, { kind: 'const', data });
  }

  /** A 0-d constant, shared per (value, dtype). */
  scalar(value: number, dtype: DType = 'float32'): Tensor {
    const key = `${dtype}:${Object.is(value, -0) ? '-0' : value}`;
    let t = this.scalars.get(key);
    if (!t) {
      const data = dtype === 'float32' ? Float32Array.of(value)
        : dtype === 'float16' ? Uint16Array.of(toHalf(value))
        : dtype === 'int64' ? BigInt64Array.of(BigInt(value))
        : dtype === 'int32' ? Int32Array.of(value)
        : Uint8Array.of(value ? 1 : 0);
      t = this.constant(data, [], dtype);
      this.scalars.set(key, t);
    }
    return t;
  }

  /** Parameters declared so far, in declaration order. */
  params(): ParamInfo[] {
    return [...this.named.values()].filter((t) => t.source.kind === 'param')
      .map((t) => ({ name: (t.source as { name: string }).name, shape: t.shape, dtype: t.dtype }));
  }

  /** The parameter tensors declared so far (for gradients with respect to all of them). */
  paramTensors(): Tensor[] {
    return [...this.named.values()].filter((t) => t.source.kind === 'param');
  }

  paramCount(): number { return this.params().reduce((n, p) => n + sizeOf(p.shape), 0); }

  /** Adds a node after checking its inputs with the op's shape rule. */
  apply<A>(op: OpDef<A>, ins: readonly Tensor[], attrs: A): Tensor {
    if (OP_TABLE.get(op.name) !== op) {
      throw new GraphError(`unknown op "${op.name}": not in the op table (define it with defineOp) (inputs: ${ins.map(describe).join(', ') || 'none'})`);
    }
    for (const t of ins) {
      if (t.graph !== this) throw new GraphError(`${op.name}: input ${describe(t)} belongs to another graph`);
    }
    let info: TensorInfo;
    try {
      info = op.infer(ins, attrs);
    } catch (e) {
      if (e instanceof GraphError) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      throw new GraphError(`${op.name}: ${msg} (inputs: ${ins.map(describe).join(', ') || 'none'})`);
    }
    const node: Node = { id: this.nodes.length, op: op as OpDef<unknown>, inputs: ins, attrs };
    this.nodes.push(node);
    return this.newTensor(info.shape, info.dtype, { kind: 'node', node });
  }
}

/** Adds a node of `op` to the graph its tensor inputs belong to. */
export function apply<A>(op: OpDef<A>, ins: readonly Tensor[], attrs: A): Tensor {
  const g = ins[0]?.graph;
  if (!g) throw new GraphError(`${op.name}: needs at least one tensor input`);
  return g.apply(op, ins, attrs);
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function dtypeOfData(d: ConstData): DType {
  if (d instanceof Float32Array) return 'float32';
  if (d instanceof Uint16Array) return 'float16';
  if (d instanceof BigInt64Array) return 'int64';
  if (d instanceof Int32Array) return 'int32';
  return 'bool';
}

/** float32 → IEEE half bits (round to nearest even); the one conversion the weight readers use too. */
export const toHalf: (v: number) => number = numberToF16Bits;

/** IEEE half bits → number (exact). */
export const fromHalf: (h: number) => number = f16BitsToNumber;

export function toHalfArray(a: Float32Array): Uint16Array {
  const out = new Uint16Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = toHalf(a[i]!);
  return out;
}

export function fromHalfArray(a: Uint16Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = fromHalf(a[i]!);
  return out;
}
