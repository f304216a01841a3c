/**
 * Test helper: writes tiny ONNX models (protobuf by hand) so the matting plumbing can be checked against
 * graphs whose output is known in closed form. Field numbers are those of onnx/onnx.proto.
 */

type Dim = number | string;

export interface TinyNode {
  op: string;
  inputs: string[];
  outputs: string[];
}

export interface TinyModel {
  inputs: Array<{ name: string; dims: Dim[] }>;
  outputs: Array<{ name: string; dims: Dim[] }>;
  initializers: Array<{ name: string; dims: number[]; data: Float32Array }>;
  nodes: TinyNode[];
  opset?: number;
}

const FLOAT = 1;

class Pb {
  private parts: number[] = [];
  varint(v: number): this {
    let x = v;
    while (x > 0x7f) { this.parts.push((x & 0x7f) | 0x80); x = Math.floor(x / 128); }
    this.parts.push(x);
    return this;
  }
  int(field: number, v: number): this { return this.varint(field << 3).varint(v); }
  bytes(field: number, b: Uint8Array): this {
    this.varint((field << 3) | 2).varint(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }
  str(field: number, s: string): this { return this.bytes(field, new TextEncoder().encode(s)); }
  msg(field: number, m: Pb): this { return this.bytes(field, m.done()); }
  done(): Uint8Array { return Uint8Array.from(this.parts); }
}

function valueInfo(name: string, dims: Dim[]): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Pb().int(1, d) : new Pb().str(2, d));
  const tensorType = new Pb().int(1, FLOAT).msg(2, shape);
  return new Pb().str(1, name).msg(2, new Pb().msg(1, tensorType));
}

/** Serialise a float32-only model (IR 8, default-domain opset 13 unless given). */
export function tinyOnnx(m: TinyModel): Uint8Array {
  const graph = new Pb();
  m.nodes.forEach((n, i) => {
    const node = new Pb();
    for (const x of n.inputs) node.str(1, x);
    for (const y of n.outputs) node.str(2, y);
    node.str(3, `n${i}`).str(4, n.op);
    graph.msg(1, node);
  });
  graph.str(2, 'tiny');
  for (const t of m.initializers) {
    const tensor = new Pb();
    for (const d of t.dims) tensor.int(1, d);
    tensor.int(2, FLOAT).str(8, t.name).bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    graph.msg(5, tensor);
  }
  for (const v of m.inputs) graph.msg(11, valueInfo(v.name, v.dims));
  for (const v of m.outputs) graph.msg(12, valueInfo(v.name, v.dims));
  return new Pb()
    .int(1, 8)
    .str(2, 'facelift-ts test')
    .msg(7, graph)
    .msg(8, new Pb().str(1, '').int(2, m.opset ?? 13))
    .done();
}
