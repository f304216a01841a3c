/** Shape ops (reshape, transpose, concat, slice, pad, gather, expand) and reductions. */
import { apply, defineOp, describe, isFloat, sizeOf, type OpDef, type Shape, type Tensor, type TensorInfo } from '../graph.ts';
import { A } from '../attrs.ts';
import { broadcastShapes, cast, div, equal, mul, sumToShape } from './elementwise.ts';

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new Error(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

// ---- reshape ----
export const ReshapeOp: OpDef<{ shape: Shape }> = defineOp({
  name: 'reshape',
  infer: ([x], { shape }) => {
    if (sizeOf(x!.shape) !== sizeOf(shape)) throw new Error(`cannot reshape ${describe(x!)} to [${shape.join(',')}]`);
    return { shape, dtype: x!.dtype };
  },
  lower: (b, [x], { shape }) => b.node('Reshape', [x!, b.i64(shape)]),
  grad: (g, [x]) => [reshape(g, x!.shape)],
});

/** Reshape; one dimension may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const known = shape.reduce((n, d) => (d === -1 ? n : n * d), 1);
  const holes = shape.filter((d) => d === -1).length;
  let s = [...shape];
  if (holes > 1) throw new Error(`reshape: at most one -1 in [${shape.join(',')}]`);
  if (holes === 1) s = shape.map((d) => (d === -1 ? (known === 0 ? 0 : x.size / known) : d));
  if (s.length === x.rank && s.every((d, i) => d === x.shape[i])) return x;
  return apply(ReshapeOp, [x], { shape: s });
}
export const flatten = (x: Tensor, from = 0): Tensor => reshape(x, [...x.shape.slice(0, from), -1]);
export const unsqueeze = (x: Tensor, axis: number): Tensor => {
  const a = axis < 0 ? axis + x.rank + 1 : axis;
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
};
export const squeeze = (x: Tensor, axis: number): Tensor => {
  const a = normAxis(axis, x.rank);
  if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${axis} of ${describe(x)} is not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== a));
};

// ---- transpose ----
export const TransposeOp: OpDef<{ perm: readonly number[] }> = defineOp({
  name: 'transpose',
  infer: ([x], { perm }) => {
    const ok = perm.length === x!.shape.length && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
    if (!ok) throw new Error(`perm [${perm.join(',')}] is not a permutation of rank ${x!.shape.length}`);
    return { shape: perm.map((p) => x!.shape[p]!), dtype: x!.dtype };
  },
  lower: (b, [x], { perm }) => b.node('Transpose', [x!], { perm: A.is(perm) }),
  grad: (g, _ins, _y, { perm }) => {
    const inv: number[] = [];
    perm.forEach((p, i) => { inv[p] = i; });
    return [transpose(g, inv)];
  },
});
export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.every((p, i) => p === i) && perm.length === x.rank) return x;
  return apply(TransposeOp, [x], { perm });
}
/** Swaps the last two axes (matrix transpose of a batch). */
export function mT(x: Tensor): Tensor {
  if (x.rank < 2) throw new Error(`mT: needs rank ≥ 2, got ${describe(x)}`);
  const perm = x.shape.map((_, i) => i);
  perm[x.rank - 2] = x.rank - 1;
  perm[x.rank - 1] = x.rank - 2;
  return transpose(x, perm);
}

// ---- concat / slice / split / pad ----
export const ConcatOp: OpDef<{ axis: number }> = defineOp({
  name: 'concat',
  infer: (ins, { axis }) => {
    const first = ins[0]!;
    const a = normAxis(axis, first.shape.length);
    let total = 0;
    for (const t of ins) {
      if (t.dtype !== first.dtype) throw new Error(`dtypes differ`);
      if (t.shape.length !== first.shape.length || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
        throw new Error(`shapes differ outside axis ${axis}`);
      }
      total += t.shape[a]!;
    }
    return { shape: first.shape.map((d, i) => (i === a ? total : d)), dtype: first.dtype };
  },
  lower: (b, ins, { axis }) => b.node('Concat', ins, { axis: A.i(axis) }),
  grad: (g, ins, _y, { axis }) => {
    const a = normAxis(axis, g.rank);
    let off = 0;
    return ins.map((t) => {
      const s = slice(g, [off], [off + t.shape[a]!], [a]);
      off += t.shape[a]!;
      return s;
    });
  },
});
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 1) return xs[0]!;
  return apply(ConcatOp, xs, { axis: axis < 0 ? axis + xs[0]!.rank : axis });
}

interface SliceAttrs { starts: readonly number[]; ends: readonly number[]; axes: readonly number[] }
export const SliceOp: OpDef<SliceAttrs> = defineOp({
  name: 'slice',
  infer: ([x], { starts, ends, axes }) => {
    const shape = [...x!.shape];
    axes.forEach((ax, i) => {
      const d = x!.shape[ax]!;
      if (!(starts[i]! >= 0 && starts[i]! <= ends[i]! && ends[i]! <= d)) {
        throw new Error(`range [${starts[i]}, ${ends[i]}) is outside axis ${ax} of size ${d}`);
      }
      shape[ax] = ends[i]! - starts[i]!;
    });
    return { shape, dtype: x!.dtype };
  },
  lower: (b, [x], { starts, ends, axes }) => b.node('Slice', [x!, b.i64(starts), b.i64(ends), b.i64(axes)]),
  grad: (g, [x], _y, { starts, ends, axes }) => {
    const pads = new Array<number>(2 * x!.rank).fill(0);
    axes.forEach((ax, i) => {
      pads[ax] = starts[i]!;
      pads[x!.rank + ax] = x!.shape[ax]! - ends[i]!;
    });
    return [pad(g, pads)];
  },
});
/** Step-1 slice; negative starts/ends count from the end (python style), ends are clamped. */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], axes?: readonly number[]): Tensor {
  const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, x.rank));
  const st = starts.map((s, i) => { const d = x.shape[ax[i]!]!; return Math.min(Math.max(s < 0 ? s + d : s, 0), d); });
  const en = ends.map((e, i) => { const d = x.shape[ax[i]!]!; return Math.min(Math.max(e < 0 ? e + d : e, 0), d); });
  if (ax.every((a, i) => st[i] === 0 && en[i] === x.shape[a])) return x;
  return apply(SliceOp, [x], { starts: st, ends: en, axes: ax });
}
/** `length` elements of `axis` from `start`. */
export const narrow = (x: Tensor, axis: number, start: number, length: number): Tensor => slice(x, [start], [start + length], [axis]);
/** Splits `axis` into pieces of the given sizes (or `sizes` equal pieces when a number); lowered as Slices. */
export function split(x: Tensor, sizes: number | readonly number[], axis: number): Tensor[] {
  const a = normAxis(axis, x.rank);
  const d = x.shape[a]!;
  const parts = typeof sizes === 'number' ? new Array<number>(sizes).fill(d / sizes) : sizes;
  if (parts.some((p) => !Number.isInteger(p)) || parts.reduce((s, p) => s + p, 0) !== d) {
    throw new Error(`split: sizes [${parts.join(',')}] do not add up to ${d} (axis ${axis} of ${describe(x)})`);
  }
  let off = 0;
  return parts.map((p) => { const s = narrow(x, a, off, p); off += p; return s; });
}

export const PadOp: OpDef<{ pads: readonly number[]; value: number }> = defineOp({
  name: 'pad',
  infer: ([x], { pads }) => {
    const r = x!.shape.length;
    if (pads.length !== 2 * r || pads.some((p) => p < 0 || !Number.isInteger(p))) throw new Error(`pads [${pads.join(',')}] must be 2×rank non-negative integers`);
    return { shape: x!.shape.map((d, i) => d + pads[i]! + pads[r + i]!), dtype: x!.dtype };
  },
  lower: (b, [x], { pads, value }, { out }) => b.node('Pad', [x!, b.i64(pads), b.scalar(value, out.dtype)], { mode: A.s('constant') }),
  grad: (g, [x], _y, { pads }) => [slice(g, pads.slice(0, x!.rank), x!.shape.map((d, i) => pads[i]! + d), x!.shape.map((_, i) => i))],
});
/** Constant padding; `pads` is ONNX order [begin_0, …, begin_n, end_0, …, end_n]. */
export const pad = (x: Tensor, pads: readonly number[], value = 0): Tensor => apply(PadOp, [x], { pads, value });

// ---- expand / gather ----
export const ExpandOp: OpDef<{ shape: Shape }> = defineOp({
  name: 'expand',
  infer: ([x], { shape }) => {
    const out = broadcastShapes(x!.shape, shape);
    if (out.length !== shape.length || out.some((d, i) => d !== shape[i])) throw new Error(`cannot expand ${describe(x!)} to [${shape.join(',')}]`);
    return { shape: out, dtype: x!.dtype };
  },
  lower: (b, [x], { shape }) => b.node('Expand', [x!, b.i64(shape)]),
  grad: (g, [x]) => [sumToShape(g, x!.shape)],
});
export function expand(x: Tensor, shape: Shape): Tensor {
  if (x.rank === shape.length && x.shape.every((d, i) => d === shape[i])) return x;
  return apply(ExpandOp, [x], { shape });
}

export const GatherOp: OpDef<{ axis: number }> = defineOp({
  name: 'gather',
  infer: ([x, idx], { axis }) => {
    const a = normAxis(axis, x!.shape.length);
    if (idx!.dtype !== 'int64' && idx!.dtype !== 'int32') throw new Error(`indices must be int64/int32, got ${describe(idx!)}`);
    return { shape: [...x!.shape.slice(0, a), ...idx!.shape, ...x!.shape.slice(a + 1)], dtype: x!.dtype };
  },
  lower: (b, [x, i], { axis }) => b.node('Gather', [x!, i!], { axis: A.i(axis) }),
  grad: (g, [x, idx], _y, { axis }) => {
    // Flatten the index dims to one, then scatter-add rows of g back into a zero tensor of x's shape.
    const a = axis;
    const n = idx!.size;
    const g1 = reshape(g, [...x!.shape.slice(0, a), n, ...x!.shape.slice(a + 1)]);
    const idxShape = x!.shape.map((_, i) => (i === a ? n : 1));
    const idxFull = expand(reshape(cast(idx!, 'int64'), idxShape), g1.shape);
    const zeros = expand(x!.graph.scalar(0, x!.dtype), x!.shape);
    return [apply(ScatterAddOp, [zeros, idxFull, g1], { axis: a }), null];
  },
});
/** Selects entries along `axis` by an int tensor of indices (embedding lookup, view selection). */
export const gather = (x: Tensor, indices: Tensor, axis = 0): Tensor => apply(GatherOp, [x, indices], { axis: normAxis(axis, x.rank) });

/** ScatterElements with reduction=add: the backward of gather (not itself differentiated). */
export const ScatterAddOp: OpDef<{ axis: number }> = defineOp({
  name: 'scatterAdd',
  infer: ([x, idx, upd]) => {
    if (idx!.shape.length !== upd!.shape.length || idx!.shape.some((d, i) => d !== upd!.shape[i])) throw new Error('indices and updates must have equal shapes');
    return x!;
  },
  lower: (b, [x, i, u], { axis }) => b.node('ScatterElements', [x!, i!, u!], { axis: A.i(axis), reduction: A.s('add') }),
});

// ---- reductions ----
interface ReduceAttrs { axes: readonly number[]; keepdims: boolean }
function reduceInfer(ins: readonly TensorInfo[], { axes, keepdims }: ReduceAttrs): TensorInfo {
  const x = ins[0]!;
  if (!isFloat(x.dtype)) throw new Error(`needs a float input, got ${x.dtype}`);
  const shape: number[] = [];
  x.shape.forEach((d, i) => { if (!axes.includes(i)) shape.push(d); else if (keepdims) shape.push(1); });
  return { shape, dtype: x.dtype };
}
function keptShape(x: Tensor, axes: readonly number[]): number[] {
  return x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
}
function reduceOp(name: string, onnx: string, grad: OpDef<ReduceAttrs>['grad']): OpDef<ReduceAttrs> {
  return defineOp({
    name,
    infer: reduceInfer,
    lower: (b, [x], { axes, keepdims }) => b.node(onnx, [x!, b.i64(axes)], { keepdims: A.i(keepdims ? 1 : 0) }),
    ...(grad ? { grad } : {}),
  });
}
export const ReduceSumOp = reduceOp('reduceSum', 'ReduceSum', (g, [x], _y, { axes }) => [expand(reshape(g, keptShape(x!, axes)), x!.shape)]);
export const ReduceMeanOp = reduceOp('reduceMean', 'ReduceMean', (g, [x], _y, { axes }) => {
  const n = axes.reduce((s, a) => s * x!.shape[a]!, 1);
  return [expand(reshape(div(g, n), keptShape(x!, axes)), x!.shape)];
});
export const ReduceMaxOp = reduceOp('reduceMax', 'ReduceMax', (g, [x], y, { axes }) => {
  // The gradient is shared equally between tied maxima.
  const yk = reshape(y, keptShape(x!, axes));
  const mask = cast(equal(x!, yk), x!.dtype);
  const count = reduceSum(mask, axes, true);
  return [mul(mask, div(reshape(g, keptShape(x!, axes)), count))];
});

function reduce(op: OpDef<ReduceAttrs>, x: Tensor, axes: number | readonly number[], keepdims: boolean): Tensor {
  const list = (typeof axes === 'number' ? [axes] : axes).map((a) => normAxis(a, x.rank));
  if (list.length === 0) return x; // (ONNX would read an empty axes list as "all axes")
  return apply(op, [x], { axes: [...new Set(list)].sort((a, b) => a - b), keepdims });
}
export const reduceSum = (x: Tensor, axes: number | readonly number[], keepdims = false): Tensor => reduce(ReduceSumOp, x, axes, keepdims);
export const reduceMean = (x: Tensor, axes: number | readonly number[], keepdims = false): Tensor => reduce(ReduceMeanOp, x, axes, keepdims);
export const reduceMax = (x: Tensor, axes: number | readonly number[], keepdims = false): Tensor => reduce(ReduceMaxOp, x, axes, keepdims);

/** Zeros shaped like `x` (as an Expand of a scalar, so nothing large is stored in the model). */
export const zerosLike = (x: Tensor): Tensor => expand(x.graph.scalar(0, x.dtype), x.shape);
