/**
 * IR → ONNX ModelProto. Only what the requested outputs depend on is emitted; inputs and parameters become
 * graph inputs (so no weights live in the protobuf and no 2 GB limit applies), constants become initializers.
 */
import {
  GraphError, describe, type ConstData, type Derivation, type DType, type Lowerer, type Shape, type Tensor,
} from './graph.ts';
import { encodeModel, type AttrValue, type NodeSpec, type TensorProtoSpec, type ValueInfoSpec } from './proto.ts';

export const OPSET = 23;
export const IR_VERSION = 11;

export interface GraphInputInfo {
  readonly name: string;
  readonly kind: 'input' | 'param';
  readonly shape: Shape;
  /** int8 only for inputs derived from a parameter. */
  readonly dtype: DType | 'int8';
  /** Set for inputs the session computes from a parameter (int8 weights and their scales). */
  readonly derived?: Derivation;
}

export interface LowerOptions {
  /** Linear layers whose weight is a float32 parameter run as int8 matmuls (weights quantized per column). */
  int8Linear?: boolean;
}

export interface LoweredModel {
  readonly bytes: Uint8Array;
  /** Inputs the model reads (feeds and parameters), in declaration order. */
  readonly inputs: readonly GraphInputInfo[];
  readonly outputs: readonly { name: string; shape: Shape; dtype: DType }[];
  readonly nodeCount: number;
}

function rawBytes(d: ConstData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Lowers the part of the graph that `outputs` depend on. Output names are the record's keys. */
export function lower(outputs: Record<string, Tensor>, graphName = 'facelift', opts: LowerOptions = {}): LoweredModel {
  const outs = Object.entries(outputs);
  if (outs.length === 0) throw new GraphError('lower: no outputs requested');
  const graph = outs[0]![1].graph;

  // Reachability: walk back from the outputs.
  const needed = new Map<number, Tensor>();
  const stack = outs.map(([, t]) => t);
  for (const t of stack) if (t.graph !== graph) throw new GraphError(`lower: output ${describe(t)} belongs to another graph`);
  while (stack.length) {
    const t = stack.pop()!;
    if (needed.has(t.id)) continue;
    needed.set(t.id, t);
    if (t.source.kind === 'node') stack.push(...t.source.node.inputs);
  }
  const ordered = [...needed.values()].sort((a, b) => a.id - b.id);

  const names = new Map<number, string>();
  const nodes: NodeSpec[] = [];
  const initializers: TensorProtoSpec[] = [];
  const inputs: GraphInputInfo[] = [];
  const i64Cache = new Map<string, string>();
  const scalarCache = new Map<string, string>();
  const derivedNames = new Set<string>();
  let counter = 0;

  const b: Lowerer = {
    node(opType, ins, attrs = {}, domain) {
      const out = `%v${counter++}`;
      nodes.push({ opType, name: `${opType}_${counter}`, inputs: ins, outputs: [out], attrs: attrs as Record<string, AttrValue>, ...(domain ? { domain } : {}) });
      return out;
    },
    i64(values) {
      const key = values.join(',');
      let name = i64Cache.get(key);
      if (!name) {
        name = `%i${i64Cache.size}`;
        initializers.push({ name, dtype: 'int64', dims: [values.length], raw: rawBytes(BigInt64Array.from(values, (v) => BigInt(v))) });
        i64Cache.set(key, name);
      }
      return name;
    },
    scalar(value, dtype) {
      const key = `${dtype}:${value}`;
      let name = scalarCache.get(key);
      if (!name) {
        name = `%s${scalarCache.size}`;
        const t = graph.scalar(value, dtype);
        initializers.push({ name, dtype, dims: [], raw: rawBytes((t.source as { data: ConstData }).data) });
        scalarCache.set(key, name);
      }
      return name;
    },
    int8Linear: opts.int8Linear ?? false,
    derivedParam(name, shape, dtype, derivation) {
      if (!derivedNames.has(name)) {
        derivedNames.add(name);
        inputs.push({ name, kind: 'param', shape, dtype, derived: derivation });
      }
      return name;
    },
  };

  for (const t of ordered) {
    const src = t.source;
    if (src.kind === 'input' || src.kind === 'param') {
      names.set(t.id, src.name);
      inputs.push({ name: src.name, kind: src.kind, shape: t.shape, dtype: t.dtype });
    } else if (src.kind === 'const') {
      const name = `%c${t.id}`;
      initializers.push({ name, dtype: t.dtype, dims: t.shape, raw: rawBytes(src.data) });
      names.set(t.id, name);
    } else {
      const node = src.node;
      const inNames = node.inputs.map((i) => names.get(i.id)!);
      const paramNames = node.inputs.map((i) => (i.source.kind === 'param' ? i.source.name : null));
      names.set(t.id, node.op.lower(b, inNames, node.attrs, { ins: node.inputs, out: t, paramNames }));
    }
  }

  const outputInfos: ValueInfoSpec[] = [];
  const taken = new Set(inputs.map((i) => i.name));
  for (const [name, t] of outs) {
    if (taken.has(name)) throw new GraphError(`lower: output name "${name}" is already an input or output name`);
    taken.add(name);
    nodes.push({ opType: 'Identity', name: `out_${name}`, inputs: [names.get(t.id)!], outputs: [name], attrs: {} });
    outputInfos.push({ name, dtype: t.dtype, dims: t.shape });
  }

  // A parameter read only through its derived forms (an int8 linear's weight) is not an input of the model.
  const read = new Set(nodes.flatMap((n) => n.inputs));
  const used = inputs.filter((i) => i.kind === 'input' || read.has(i.name));
  inputs.splice(0, inputs.length, ...used);

  const bytes = encodeModel({
    irVersion: IR_VERSION,
    opsets: [{ domain: '', version: OPSET }, { domain: 'com.microsoft', version: 1 }],
    graphName,
    nodes,
    initializers,
    inputs: inputs.map((i) => ({ name: i.name, dtype: i.dtype, dims: i.shape })),
    outputs: outputInfos,
  });
  return {
    bytes,
    inputs,
    outputs: outs.map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype })),
    nodeCount: nodes.length,
  };
}

