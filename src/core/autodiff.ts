/**
 * Reverse-mode autodiff over the IR. Backward nodes are added to the same graph (each op's `grad` rule is
 * written with op functions), so forward and backward lower into one ONNX model and ORT frees activations
 * as soon as their last backward use has run.
 */
import { GraphError, describe, isFloat, sameShape, type Tensor } from './graph.ts';
import { add, cast } from './ops/elementwise.ts';
import { expand } from './ops/shape.ts';

/**
 * Vector-Jacobian product: the gradient of Σᵢ ⟨ysᵢ, cotangentsᵢ⟩ with respect to each tensor of `wrt`
 * (inputs, params, or intermediate values). A `wrt` that the outputs do not depend on gets zeros.
 */
export function vjp(ys: readonly Tensor[], cotangents: readonly Tensor[], wrt: readonly Tensor[]): Tensor[] {
  if (ys.length !== cotangents.length) throw new GraphError(`vjp: ${ys.length} outputs but ${cotangents.length} cotangents`);
  const graph = ys[0]?.graph;
  if (!graph) throw new GraphError('vjp: no outputs');
  ys.forEach((y, i) => {
    const c = cotangents[i]!;
    if (!sameShape(y.shape, c.shape) || y.dtype !== c.dtype) throw new GraphError(`vjp: cotangent ${describe(c)} does not match output ${describe(y)}`);
  });
  for (const w of wrt) {
    if (w.graph !== graph) throw new GraphError(`vjp: ${describe(w)} belongs to another graph`);
    if (!isFloat(w.dtype)) throw new GraphError(`vjp: cannot differentiate with respect to ${describe(w)} (not a float tensor)`);
  }

  // Tensors the outputs depend on, in creation (= topological) order.
  const upstream = new Map<number, Tensor>();
  const stack = [...ys];
  while (stack.length) {
    const t = stack.pop()!;
    if (upstream.has(t.id)) continue;
    upstream.set(t.id, t);
    if (t.source.kind === 'node') stack.push(...t.source.node.inputs);
  }
  const order = [...upstream.values()].sort((a, b) => a.id - b.id);

  // Tensors that depend on some `wrt` (only those need gradients).
  const wrtIds = new Set(wrt.map((w) => w.id));
  const relevant = new Set<number>();
  for (const t of order) {
    if (wrtIds.has(t.id)) { relevant.add(t.id); continue; }
    if (t.source.kind === 'node' && isFloat(t.dtype) && t.source.node.inputs.some((i) => relevant.has(i.id))) relevant.add(t.id);
  }

  const grads = new Map<number, Tensor>();
  const accumulate = (t: Tensor, g: Tensor): void => {
    if (!sameShape(g.shape, t.shape)) {
      throw new GraphError(`vjp: gradient ${describe(g)} for ${describe(t)} has the wrong shape (an op's grad rule is wrong)`);
    }
    const gt = g.dtype === t.dtype ? g : cast(g, t.dtype);
    const prev = grads.get(t.id);
    grads.set(t.id, prev ? add(prev, gt) : gt);
  };
  ys.forEach((y, i) => { if (relevant.has(y.id)) accumulate(y, cotangents[i]!); });

  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i]!;
    const g = grads.get(t.id);
    if (!g || t.source.kind !== 'node') continue;
    const node = t.source.node;
    const needs = node.inputs.map((x) => relevant.has(x.id));
    if (!needs.some(Boolean)) continue;
    if (!node.op.grad) throw new GraphError(`vjp: op ${node.op.name} has no gradient rule (inputs: ${node.inputs.map(describe).join(', ')})`);
    const gin = node.op.grad(g, node.inputs, t, node.attrs);
    node.inputs.forEach((x, k) => {
      const gk = gin[k];
      if (needs[k] && gk) accumulate(x, gk);
    });
  }

  return wrt.map((w) => grads.get(w.id) ?? expand(graph.scalar(0, w.dtype), w.shape));
}

/** Gradients of a scalar (size-1) loss with respect to `wrt`. */
export function grad(loss: Tensor, wrt: readonly Tensor[]): Tensor[] {
  if (loss.size !== 1 || !isFloat(loss.dtype)) throw new GraphError(`grad: loss must be a float scalar, got ${describe(loss)}`);
  const one = loss.graph.constant(loss.dtype === 'float16' ? Uint16Array.of(0x3c00) : Float32Array.of(1), loss.shape, loss.dtype);
  return vjp([loss], [one], wrt);
}

/**
 * VJP with the cotangent as a new graph input named `name` (default `grad:<output name>`): for losses
 * computed outside the graph (the rasterizer), feed dL/dy and read back dL/dwrt.
 */
export function vjpInput(y: Tensor, wrt: readonly Tensor[], name: string): { cotangent: Tensor; grads: Tensor[] } {
  const cotangent = y.graph.input(name, y.shape, y.dtype);
  return { cotangent, grads: vjp([y], [cotangent], wrt) };
}

/**
 * Loss plus the gradient of every parameter the loss depends on, as session outputs:
 * `{ loss, 'grad/<param name>': … }`. Parameters listed in `frozen` are left out.
 */
export function lossAndParamGrads(loss: Tensor, frozen: ReadonlySet<string> = new Set()): Record<string, Tensor> {
  const params = loss.graph.paramTensors().filter((p) => isFloat(p.dtype) && !frozen.has(paramName(p)));
  const grads = grad(loss, params);
  const out: Record<string, Tensor> = { loss };
  params.forEach((p, i) => { out[`grad/${paramName(p)}`] = grads[i]!; });
  return out;
}

const paramName = (p: Tensor): string => (p.source as { name: string }).name;
