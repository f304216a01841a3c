/** Elementwise ops with numpy broadcasting: arithmetic, unary math, comparisons, where/clip/cast. */
import { apply, defineOp, describe, isFloat, type DType, type OpDef, type Shape, type Tensor, type TensorInfo } from '../graph.ts';
import { A } from '../attrs.ts';
import { reduceSum, reshape } from './shape.ts';

export type TensorLike = Tensor | number;

/** Numpy broadcasting of two shapes; throws with both shapes when they do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`shapes [${a.join(',')}] and [${b.join(',')}] do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  return out;
}

/** Sums a broadcast gradient back down to `shape` (the shape of the operand before broadcasting). */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const s = axes.length ? reduceSum(g, axes, true) : g;
  return reshape(s, shape);
}

function lift(a: TensorLike, like: Tensor): Tensor {
  return typeof a === 'number' ? like.graph.scalar(a, like.dtype) : a;
}

function pair(a: TensorLike, b: TensorLike, name: string): [Tensor, Tensor] {
  if (typeof a === 'number' && typeof b === 'number') throw new Error(`${name}: at least one operand must be a tensor`);
  const ta = typeof a === 'number' ? lift(a, b as Tensor) : a;
  return [ta, lift(b, ta)];
}

function binaryInfer(kind: 'float' | 'any' | 'compare' | 'bool') {
  return (ins: readonly TensorInfo[]): TensorInfo => {
    const [a, b] = ins as [TensorInfo, TensorInfo];
    if (a.dtype !== b.dtype) throw new Error(`dtypes differ: ${describe(a)} vs ${describe(b)} (cast one of them)`);
    if (kind === 'float' && !isFloat(a.dtype)) throw new Error(`needs float inputs, got ${a.dtype}`);
    if (kind === 'bool' && a.dtype !== 'bool') throw new Error(`needs bool inputs, got ${a.dtype}`);
    return { shape: broadcastShapes(a.shape, b.shape), dtype: kind === 'compare' ? 'bool' : a.dtype };
  };
}

type BinaryGrad = (g: Tensor, a: Tensor, b: Tensor, y: Tensor) => [Tensor | null, Tensor | null];

function binaryOp(name: string, onnx: string, kind: 'float' | 'any' | 'compare' | 'bool', grad?: BinaryGrad): OpDef<void> {
  return defineOp({
    name,
    infer: binaryInfer(kind),
    lower: (b, [x, y]) => b.node(onnx, [x!, y!]),
    grad: grad && ((g, [a, b], y) => {
      const [ga, gb] = grad(g, a!, b!, y);
      return [ga && sumToShape(ga, a!.shape), gb && sumToShape(gb, b!.shape)];
    }),
  });
}

export const AddOp = binaryOp('add', 'Add', 'any', (g) => [g, g]);
export const SubOp = binaryOp('sub', 'Sub', 'any', (g) => [g, neg(g)]);
export const MulOp = binaryOp('mul', 'Mul', 'any', (g, a, b) => [mul(g, b), mul(g, a)]);
export const DivOp = binaryOp('div', 'Div', 'any', (g, _a, b, y) => [div(g, b), neg(div(mul(g, y), b))]);
export const PowOp = binaryOp('pow', 'Pow', 'float', (g, a, b, y) => [mul(g, mul(b, pow(a, sub(b, 1)))), mul(g, mul(y, log(a)))]);
export const MinOp = binaryOp('minimum', 'Min', 'float', (g, a, b) => [mul(g, cast(lessOrEqual(a, b), g.dtype)), mul(g, cast(greater(a, b), g.dtype))]);
export const MaxOp = binaryOp('maximum', 'Max', 'float', (g, a, b) => [mul(g, cast(greaterOrEqual(a, b), g.dtype)), mul(g, cast(less(a, b), g.dtype))]);
export const EqualOp = binaryOp('equal', 'Equal', 'compare');
export const LessOp = binaryOp('less', 'Less', 'compare');
export const LessOrEqualOp = binaryOp('lessOrEqual', 'LessOrEqual', 'compare');
export const GreaterOp = binaryOp('greater', 'Greater', 'compare');
export const GreaterOrEqualOp = binaryOp('greaterOrEqual', 'GreaterOrEqual', 'compare');
export const AndOp = binaryOp('and', 'And', 'bool');

export const add = (a: TensorLike, b: TensorLike): Tensor => apply(AddOp, pair(a, b, 'add'), undefined);
export const sub = (a: TensorLike, b: TensorLike): Tensor => apply(SubOp, pair(a, b, 'sub'), undefined);
export const mul = (a: TensorLike, b: TensorLike): Tensor => apply(MulOp, pair(a, b, 'mul'), undefined);
export const div = (a: TensorLike, b: TensorLike): Tensor => apply(DivOp, pair(a, b, 'div'), undefined);
export const pow = (a: TensorLike, b: TensorLike): Tensor => apply(PowOp, pair(a, b, 'pow'), undefined);
export const minimum = (a: TensorLike, b: TensorLike): Tensor => apply(MinOp, pair(a, b, 'minimum'), undefined);
export const maximum = (a: TensorLike, b: TensorLike): Tensor => apply(MaxOp, pair(a, b, 'maximum'), undefined);
export const equal = (a: TensorLike, b: TensorLike): Tensor => apply(EqualOp, pair(a, b, 'equal'), undefined);
export const less = (a: TensorLike, b: TensorLike): Tensor => apply(LessOp, pair(a, b, 'less'), undefined);
export const lessOrEqual = (a: TensorLike, b: TensorLike): Tensor => apply(LessOrEqualOp, pair(a, b, 'lessOrEqual'), undefined);
export const greater = (a: TensorLike, b: TensorLike): Tensor => apply(GreaterOp, pair(a, b, 'greater'), undefined);
export const greaterOrEqual = (a: TensorLike, b: TensorLike): Tensor => apply(GreaterOrEqualOp, pair(a, b, 'greaterOrEqual'), undefined);
export const logicalAnd = (a: Tensor, b: Tensor): Tensor => apply(AndOp, [a, b], undefined);

type UnaryGrad = (g: Tensor, x: Tensor, y: Tensor) => Tensor;

function unaryOp(name: string, onnx: string, grad: UnaryGrad | null, floatOnly = true): OpDef<void> {
  return defineOp({
    name,
    infer: ([x]) => {
      if (floatOnly && !isFloat(x!.dtype)) throw new Error(`needs a float input, got ${x!.dtype}`);
      return { shape: x!.shape, dtype: x!.dtype };
    },
    lower: (b, [x]) => b.node(onnx, [x!]),
    ...(grad ? { grad: (g: Tensor, [x]: readonly Tensor[], y: Tensor) => [grad(g, x!, y)] } : {}),
  });
}

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

export const NegOp = unaryOp('neg', 'Neg', (g) => neg(g), false);
export const ExpOp = unaryOp('exp', 'Exp', (g, _x, y) => mul(g, y));
export const LogOp = unaryOp('log', 'Log', (g, x) => div(g, x));
export const SqrtOp = unaryOp('sqrt', 'Sqrt', (g, _x, y) => div(mul(g, 0.5), y));
export const AbsOp = unaryOp('abs', 'Abs', (g, x) => mul(g, sign(x)), false);
export const SignOp = unaryOp('sign', 'Sign', null, false);
export const ErfOp = unaryOp('erf', 'Erf', (g, x) => mul(g, mul(exp(neg(mul(x, x))), TWO_OVER_SQRT_PI)));
export const TanhOp = unaryOp('tanh', 'Tanh', (g, _x, y) => mul(g, sub(1, mul(y, y))));
export const SigmoidOp = unaryOp('sigmoid', 'Sigmoid', (g, _x, y) => mul(g, mul(y, sub(1, y))));
export const ReluOp = unaryOp('relu', 'Relu', (g, x) => where(greater(x, 0), g, 0));
export const CosOp = unaryOp('cos', 'Cos', (g, x) => neg(mul(g, sin(x))));
export const SinOp = unaryOp('sin', 'Sin', (g, x) => mul(g, cos(x)));
export const NotOp: OpDef<void> = defineOp({
  name: 'not',
  infer: ([x]) => {
    if (x!.dtype !== 'bool') throw new Error(`needs a bool input, got ${x!.dtype}`);
    return x!;
  },
  lower: (b, [x]) => b.node('Not', [x!]),
});

export const neg = (x: Tensor): Tensor => apply(NegOp, [x], undefined);
export const exp = (x: Tensor): Tensor => apply(ExpOp, [x], undefined);
export const log = (x: Tensor): Tensor => apply(LogOp, [x], undefined);
export const sqrt = (x: Tensor): Tensor => apply(SqrtOp, [x], undefined);
export const abs = (x: Tensor): Tensor => apply(AbsOp, [x], undefined);
export const sign = (x: Tensor): Tensor => apply(SignOp, [x], undefined);
export const erf = (x: Tensor): Tensor => apply(ErfOp, [x], undefined);
export const tanh = (x: Tensor): Tensor => apply(TanhOp, [x], undefined);
export const sigmoid = (x: Tensor): Tensor => apply(SigmoidOp, [x], undefined);
export const relu = (x: Tensor): Tensor => apply(ReluOp, [x], undefined);
export const cos = (x: Tensor): Tensor => apply(CosOp, [x], undefined);
export const sin = (x: Tensor): Tensor => apply(SinOp, [x], undefined);
export const logicalNot = (x: Tensor): Tensor => apply(NotOp, [x], undefined);
/** x·sigmoid(x); composite, so its gradient comes from mul and sigmoid. */
export const silu = (x: Tensor): Tensor => mul(x, sigmoid(x));
export const square = (x: Tensor): Tensor => mul(x, x);
export const rsqrt = (x: Tensor): Tensor => div(1, sqrt(x));

export const WhereOp: OpDef<void> = defineOp({
  name: 'where',
  infer: ([c, a, b]) => {
    if (c!.dtype !== 'bool') throw new Error(`condition must be bool, got ${describe(c!)}`);
    if (a!.dtype !== b!.dtype) throw new Error(`branch dtypes differ: ${describe(a!)} vs ${describe(b!)}`);
    return { shape: broadcastShapes(c!.shape, broadcastShapes(a!.shape, b!.shape)), dtype: a!.dtype };
  },
  lower: (b, [c, x, y]) => b.node('Where', [c!, x!, y!]),
  grad: (g, [c, a, b]) => [
    null,
    sumToShape(where(c!, g, 0), a!.shape),
    sumToShape(where(c!, 0, g), b!.shape),
  ],
});

/** Elementwise select: `cond ? a : b`, broadcasting all three. */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [ta, tb] = typeof a === 'number' && typeof b === 'number'
    ? [cond.graph.scalar(a), cond.graph.scalar(b)]
    : pair(a, b, 'where');
  return apply(WhereOp, [cond, ta, tb], undefined);
}

export interface ClipAttrs { min: number; max: number }
export const ClipOp: OpDef<ClipAttrs> = defineOp({
  name: 'clip',
  infer: ([x], { min, max }) => {
    if (!isFloat(x!.dtype)) throw new Error(`needs a float input, got ${x!.dtype}`);
    if (!(min <= max)) throw new Error(`min ${min} > max ${max}`);
    return x!;
  },
  lower: (b, [x], { min, max }, { out }) => b.node('Clip', [x!, b.scalar(min, out.dtype), b.scalar(max, out.dtype)]),
  grad: (g, [x], _y, { min, max }) => [mul(g, cast(logicalAnd(greaterOrEqual(x!, min), lessOrEqual(x!, max)), g.dtype))],
});
export const clip = (x: Tensor, min: number, max: number): Tensor => apply(ClipOp, [x], { min, max });

const ONNX_TO: Record<DType, number> = { float32: 1, float16: 10, int64: 7, int32: 6, bool: 9 };
export const CastOp: OpDef<{ to: DType }> = defineOp({
  name: 'cast',
  infer: ([x], { to }) => ({ shape: x!.shape, dtype: to }),
  lower: (b, [x], { to }) => b.node('Cast', [x!], { to: A.i(ONNX_TO[to]) }),
  grad: (g, [x]) => [isFloat(x!.dtype) ? cast(g, x!.dtype) : null],
});
export const cast = (x: Tensor, to: DType): Tensor => (x.dtype === to ? x : apply(CastOp, [x], { to }));

/** Sum of all elements, as a 0-d tensor (losses). */
export function sumAll(x: Tensor): Tensor {
  return reshape(reduceSum(x, x.shape.map((_, i) => i), false), []);
}
