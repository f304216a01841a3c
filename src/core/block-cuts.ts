/**
 * Where a block graph is cut for recomputation, and what each piece computes: the attention calls
 * (`multiHeadAttention(…, { fused: true })`) divide the block's ops into segments by level — an attention output is
 * one level above its inputs — and each segment is replayed into graphs of its own: its forward, and its forward +
 * vector-Jacobian product. Pure functions over the graph IR; `RecomputedBlock` (recompute.ts) compiles and runs
 * them.
 */
import { FusedMhaOp, mergeHeads, splitHeads } from './attention.ts';
import { vjp } from './autodiff.ts';
import { Graph, GraphError, isFloat, type Node, type Shape, type Tensor } from './graph.ts';

export interface BlockGraph {
  /** The block's fed inputs by name (graph inputs). */
  inputs: Record<string, Tensor>;
  outputs: Record<string, Tensor>;
}

/** A value crossing a cut: natural layout ('n'), or split into heads for attention ('h'). */
export type Key = string;
const natural = (t: Tensor): Key => `n${t.id}`;
export const headed = (t: Tensor): Key => `h${t.id}`;
export const inputKey = (name: string): Key => `in:${name}`;
export const outputKey = (name: string): Key => `out:${name}`;

export interface Boundary {
  key: Key;
  shape: Shape;
}

const paramName = (t: Tensor): string => (t.source as { name: string }).name;

export interface SegmentPlan {
  level: number;
  /** The values its ops compute, in graph order. */
  values: Tensor[];
  ins: Boundary[];
  outs: Boundary[];
}

export interface Plan {
  maxLevel: number;
  segments: SegmentPlan[];
  attentions: { level: number; node: Node; out: Tensor }[];
}

/**
 * Levels: an attention output is one level above its inputs, any other value is at the highest level of its
 * inputs. Segment k holds the non-attention ops at level k; attention at level k reads segments < k.
 */
export function planSegments(block: BlockGraph): Plan {
  const outs = Object.values(block.outputs);
  const reach = new Map<number, Tensor>();
  const stack = [...outs];
  while (stack.length) {
    const t = stack.pop()!;
    if (reach.has(t.id)) continue;
    reach.set(t.id, t);
    if (t.source.kind === 'node') stack.push(...t.source.node.inputs);
  }
  const order = [...reach.values()].sort((a, b) => a.id - b.id);
  const level = new Map<number, number>();
  const isAttn = (t: Tensor) => t.source.kind === 'node' && t.source.node.op === FusedMhaOp;
  for (const t of order) {
    if (t.source.kind !== 'node') {
      level.set(t.id, 0);
      continue;
    }
    const l = Math.max(0, ...t.source.node.inputs.map((i) => level.get(i.id)!));
    level.set(t.id, isAttn(t) ? l + 1 : l);
  }
  const maxLevel = Math.max(0, ...outs.map((t) => level.get(t.id)!));
  const fedNames = new Map(Object.entries(block.inputs).map(([n, t]) => [t.id, n]));

  const segments: SegmentPlan[] = [];
  for (let l = 0; l <= maxLevel; l++) segments.push({ level: l, values: [], ins: [], outs: [] });
  const attentions: Plan['attentions'] = [];
  for (const t of order) {
    if (t.source.kind !== 'node') continue;
    if (isAttn(t)) {
      for (const i of t.source.node.inputs) {
        if (i.source.kind !== 'node' || isAttn(i)) {
          throw new GraphError(
            'RecomputedBlock: attention inputs must be computed inside the block (not fed, and not another attention)',
          );
        }
      }
      attentions.push({ level: level.get(t.id)!, node: t.source.node, out: t });
    } else segments[level.get(t.id)!]!.values.push(t);
  }

  // Boundaries: what each segment reads from outside itself and what it must hand on.
  const home = (t: Tensor): number | 'attn' | 'leaf' =>
    t.source.kind !== 'node' ? 'leaf' : isAttn(t) ? 'attn' : level.get(t.id)!;
  const addOnce = (list: Boundary[], b: Boundary) => {
    if (!list.some((x) => x.key === b.key)) list.push(b);
  };
  for (const seg of segments) {
    for (const v of seg.values) {
      for (const i of nodeOf(v).inputs) {
        const h = home(i);
        if (h === 'leaf') {
          if (i.source.kind === 'input') {
            const name = fedNames.get(i.id);
            if (name === undefined)
              throw new GraphError(`RecomputedBlock: graph input "${i.source.name}" is not among the block's inputs`);
            addOnce(seg.ins, { key: inputKey(name), shape: i.shape });
          }
        } else if (h === 'attn') {
          addOnce(seg.ins, { key: headed(i), shape: headShape(i, attentions) });
        } else if (h !== seg.level) {
          addOnce(seg.ins, { key: natural(i), shape: i.shape });
          addOnce(segments[h]!.outs, { key: natural(i), shape: i.shape });
        }
      }
    }
  }
  for (const a of attentions) {
    for (const i of a.node.inputs)
      addOnce(segments[level.get(i.id)!]!.outs, { key: headed(i), shape: headShape(i, attentions, a.node) });
  }
  for (const [name, t] of Object.entries(block.outputs)) {
    const h = home(t);
    if (h === 'attn' || h === 'leaf')
      throw new GraphError(`RecomputedBlock: output "${name}" must be computed by ops after the last attention`);
    addOnce(segments[h]!.outs, { key: outputKey(name), shape: t.shape });
  }
  return { maxLevel, segments: segments.filter((s) => s.values.length), attentions };
}

function nodeOf(t: Tensor): Node {
  if (t.source.kind !== 'node') throw new GraphError('RecomputedBlock: internal error (not an op output)');
  return t.source.node;
}

/** [B, L, H·D] → [B, H, L, D] shape for a tensor read or produced by attention. */
function headShape(t: Tensor, attentions: Plan['attentions'], reader?: Node): Shape {
  const node = reader ?? attentions.find((a) => a.out.id === t.id)?.node;
  const heads = (node?.attrs as { heads: number } | undefined)?.heads;
  if (!heads) throw new GraphError('RecomputedBlock: internal error (attention value without heads)');
  const [b, l, c] = t.shape as [number, number, number];
  return [b, heads, l, c / heads];
}

export interface BuiltSegment {
  fwdOutputs: Record<string, Tensor> | null;
  vjpOutputs: Record<string, Tensor>;
  gradKeys: Key[];
  params: string[];
  /**
   * The VJP without its forward: the forward values its backward reads (`residuals`, by key; tensors of the
   * forward graph, to add to a forward's outputs) come in as inputs of `vjpOutputs`' graph instead of being
   * recomputed from the segment's inputs.
   */
  fromResiduals: { residuals: Record<Key, Tensor>; vjpOutputs: Record<string, Tensor> };
}

/** Replays a segment's ops into a graph of its own, with its boundary values as inputs and outputs. */
export function buildSegment(p: SegmentPlan, block: BlockGraph, wantGrads: Set<string>): BuiltSegment {
  const g = new Graph(`segment_${p.level}`);
  const map = new Map<number, Tensor>();
  const fed = new Map<Key, Tensor>();
  for (const b of p.ins) fed.set(b.key, g.input(b.key, b.shape));
  const inputIds = new Map(Object.entries(block.inputs).map(([n, t]) => [t.id, n]));
  const mapped = (t: Tensor): Tensor => {
    const m = map.get(t.id);
    if (m) return m;
    let r: Tensor;
    const src = t.source;
    if (src.kind === 'param') r = g.param(src.name, t.shape, t.dtype);
    else if (src.kind === 'const') r = g.constant(src.data, t.shape, t.dtype);
    else if (src.kind === 'input') r = fed.get(inputKey(inputIds.get(t.id)!))!;
    else if (src.node.op === FusedMhaOp) r = mergeHeads(fed.get(headed(t))!);
    else r = fed.get(natural(t))!;
    if (!r) throw new GraphError('RecomputedBlock: internal error (unmapped boundary value)');
    map.set(t.id, r);
    return r;
  };
  for (const v of p.values) {
    const node = nodeOf(v);
    map.set(v.id, g.apply(node.op, node.inputs.map(mapped), node.attrs));
  }
  const valueOf = (b: Boundary): Tensor => {
    const id = Number(b.key.startsWith('out:') ? outputIdOf(block, b.key.slice(4)) : b.key.slice(1));
    const t = map.get(id);
    if (!t) throw new GraphError('RecomputedBlock: internal error (segment output not computed)');
    return b.key.startsWith('h') ? splitHeads(t, b.shape[1]!) : t;
  };
  const ys = p.outs.map(valueOf);
  const fwdOutputs = p.outs.length ? Object.fromEntries(p.outs.map((b, i) => [b.key, ys[i]!])) : null;
  const diffIns = p.ins.filter((b) => !b.key.startsWith('in:') || wantGrads.has(b.key.slice(3)));
  const params = g.paramTensors().filter((t) => isFloat(t.dtype));
  const cots = p.outs.map((b) => g.input(`grad:${b.key}`, b.shape));
  const forwardNodes = g.nodes.length;
  const grads = vjp(ys, cots, [...diffIns.map((b) => fed.get(b.key)!), ...params]);
  const vjpOutputs: Record<string, Tensor> = {};
  const gradKeys: Key[] = [];
  diffIns.forEach((b, i) => {
    vjpOutputs[`d:${b.key}`] = grads[i]!;
    gradKeys.push(`d:${b.key}`);
  });
  params.forEach((t, i) => {
    vjpOutputs[`grad/${paramName(t)}`] = grads[diffIns.length + i]!;
    gradKeys.push(`grad/${paramName(t)}`);
  });
  return {
    fwdOutputs, vjpOutputs, gradKeys, params: params.map(paramName),
    fromResiduals: withoutForward(vjpOutputs, forwardNodes, `r${p.level}:`),
  };
}

/**
 * Replays the backward part of a forward + VJP graph (its nodes from `forwardNodes` on) into a graph of its own,
 * in which each forward value the backward reads is an input (a residual, keyed `prefix` + its tensor id).
 */
function withoutForward(
  outputs: Record<string, Tensor>,
  forwardNodes: number,
  prefix: string,
): BuiltSegment['fromResiduals'] {
  const isForward = (t: Tensor) => t.source.kind === 'node' && t.source.node.id < forwardNodes;
  // The backward values the outputs depend on, without walking into the forward.
  const reached = new Map<number, Tensor>();
  const stack = Object.values(outputs);
  while (stack.length) {
    const t = stack.pop()!;
    if (reached.has(t.id)) continue;
    reached.set(t.id, t);
    if (t.source.kind === 'node' && !isForward(t)) stack.push(...t.source.node.inputs);
  }
  const g = new Graph(`${prefix}backward`);
  const map = new Map<number, Tensor>();
  const residuals: Record<Key, Tensor> = {};
  const leaf = (t: Tensor): Tensor => {
    const src = t.source;
    if (src.kind === 'input') return g.input(src.name, t.shape, t.dtype);
    if (src.kind === 'param') return g.param(src.name, t.shape, t.dtype);
    if (src.kind === 'const') return g.constant(src.data, t.shape, t.dtype);
    const key = `${prefix}${t.id}`;
    residuals[key] = t;
    return g.input(key, t.shape, t.dtype);
  };
  // Node ids are creation order, so replaying by node id meets every input before its reader.
  const order = [...reached.values()].sort((a, b) => nodeIdOf(a) - nodeIdOf(b));
  for (const t of order) {
    if (t.source.kind !== 'node' || isForward(t)) map.set(t.id, leaf(t));
    else {
      const node = t.source.node;
      map.set(t.id, g.apply(node.op, node.inputs.map((i) => map.get(i.id)!), node.attrs));
    }
  }
  const vjpOutputs = Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, map.get(t.id)!]));
  return { residuals, vjpOutputs };
}

const nodeIdOf = (t: Tensor): number => (t.source.kind === 'node' ? t.source.node.id : -1);

function outputIdOf(block: BlockGraph, name: string): number {
  return block.outputs[name]!.id;
}
