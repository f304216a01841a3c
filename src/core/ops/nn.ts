/** Neural-network ops: matmul, softmax, normalisations, convolutions, GELU, nearest upsampling. */
import { apply, defineOp, describe, isFloat, type OpDef, type Tensor, type TensorInfo } from '../graph.ts';
import { A } from '../attrs.ts';
import { add, broadcastShapes, div, erf, exp, log, mul, sqrt, sub, sumToShape, tanh } from './elementwise.ts';
import { concat, expand, mT, narrow, reduceMax, reduceMean, reduceSum, reshape, slice, transpose } from './shape.ts';

function sameFloat(ins: readonly TensorInfo[]): void {
  const d = ins[0]!.dtype;
  if (!isFloat(d)) throw new Error(`needs float inputs, got ${d}`);
  for (const t of ins) if (t.dtype !== d) throw new Error(`dtypes differ: ${ins.map(describe).join(' vs ')}`);
}

// ---- matmul ----
export const MatMulOp: OpDef<void> = defineOp({
  name: 'matmul',
  infer: (ins) => {
    const [a, b] = ins as [TensorInfo, TensorInfo];
    sameFloat(ins);
    if (a.shape.length < 2 || b.shape.length < 2) throw new Error('both operands need rank ≥ 2');
    const k1 = a.shape[a.shape.length - 1]!;
    const k2 = b.shape[b.shape.length - 2]!;
    if (k1 !== k2) throw new Error(`inner dimensions differ: ${k1} vs ${k2}`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    return { shape: [...batch, a.shape[a.shape.length - 2]!, b.shape[b.shape.length - 1]!], dtype: a.dtype };
  },
  lower: (b, [x, y]) => b.node('MatMul', [x!, y!]),
  grad: (g, [a, b]) => [sumToShape(matmul(g, mT(b!)), a!.shape), sumToShape(matmul(mT(a!), g), b!.shape)],
});
/** Batched matrix product with broadcast batch dimensions; both operands rank ≥ 2. */
export const matmul = (a: Tensor, b: Tensor): Tensor => apply(MatMulOp, [a, b], undefined);

// ---- linear ----
export const LinearOp: OpDef<void> = defineOp({
  name: 'linear',
  infer: (ins) => {
    sameFloat(ins);
    const [x, w, b] = ins as [TensorInfo, TensorInfo, TensorInfo | undefined];
    const inF = x.shape[x.shape.length - 1];
    if (x.shape.length < 1 || w.shape.length !== 2 || w.shape[1] !== inF) throw new Error(`weight must be [out, ${inF}] for input [..., ${inF}]`);
    if (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[0])) throw new Error(`bias must be [${w.shape[0]}]`);
    return { shape: [...x.shape.slice(0, -1), w.shape[0]!], dtype: x.dtype };
  },
  lower: (b, [x, w, bias], _a, { out, ins, paramNames }) => {
    const param = paramNames[1];
    if (b.int8Linear && param && out.dtype === 'float32' && ins[1]!.dtype === 'float32') {
      // The weight as int8 [in, out] with one scale per output; activations quantized per run (uint8, per tensor).
      const [n, k] = ins[1]!.shape as [number, number];
      const q = b.derivedParam(`${param}#int8`, [k, n], 'int8', { from: param, form: 'int8-columns' });
      const s = b.derivedParam(`${param}#scale`, [n], 'float32', { from: param, form: 'int8-scales' });
      return b.node('DynamicQuantizeMatMul', bias ? [x!, q, s, '', bias] : [x!, q, s], {}, 'com.microsoft');
    }
    // FusedMatMul reads W transposed in place (no per-run copy of the weight); ORT's CPU kernel is fp32-only.
    const y = out.dtype === 'float32'
      ? b.node('FusedMatMul', [x!, w!], { transB: A.i(1), alpha: A.f(1) }, 'com.microsoft')
      : b.node('MatMul', [x!, b.node('Transpose', [w!], { perm: A.is([1, 0]) })]);
    return bias ? b.node('Add', [y, bias]) : y;
  },
  grad: (g, [x, w, b]) => {
    const [out, inF] = w!.shape as [number, number];
    const gw = matmul(mT(reshape(g, [-1, out])), reshape(x!, [-1, inF]));
    return [matmul(g, w!), gw, ...(b ? [reshape(reduceSum(reshape(g, [-1, out]), 0), [out])] : [])];
  },
});
/** x·Wᵀ + b with W in PyTorch's [out, in] layout (bias may be null). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return apply(LinearOp, bias ? [x, weight, bias] : [x, weight], undefined);
}

// ---- softmax ----
export const SoftmaxOp: OpDef<{ axis: number }> = defineOp({
  name: 'softmax',
  infer: ([x], { axis }) => {
    if (!isFloat(x!.dtype)) throw new Error(`needs a float input, got ${x!.dtype}`);
    if (axis < 0 || axis >= x!.shape.length) throw new Error(`axis ${axis} out of range`);
    return x!;
  },
  lower: (b, [x], { axis }) => b.node('Softmax', [x!], { axis: A.i(axis) }),
  grad: (g, _ins, y, { axis }) => [mul(y, sub(g, reduceSum(mul(g, y), axis, true)))],
});
export const softmax = (x: Tensor, axis = -1): Tensor => apply(SoftmaxOp, [x], { axis: axis < 0 ? axis + x.rank : axis });
/** Numerically stable log-softmax, composed from primitives. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  const z = sub(x, reduceMax(x, axis, true));
  return sub(z, log(reduceSum(exp(z), axis, true)));
}

// ---- normalisation ----
/** Normalises over the last axis: (x - mean)·rstd, recomputed in backward (returns xhat and rstd). */
function normalizeLast(x: Tensor, eps: number): { xhat: Tensor; rstd: Tensor } {
  const xc = sub(x, reduceMean(x, -1, true));
  const rstd = div(1, sqrt(add(reduceMean(mul(xc, xc), -1, true), eps)));
  return { xhat: mul(xc, rstd), rstd };
}
/** Backward of normalizeLast given the gradient w.r.t. xhat. */
function normalizeLastGrad(gxhat: Tensor, xhat: Tensor, rstd: Tensor): Tensor {
  const m1 = reduceMean(gxhat, -1, true);
  const m2 = reduceMean(mul(gxhat, xhat), -1, true);
  return mul(rstd, sub(sub(gxhat, m1), mul(xhat, m2)));
}

export interface LayerNormAttrs { eps: number }
export const LayerNormOp: OpDef<LayerNormAttrs> = defineOp({
  name: 'layerNorm',
  infer: (ins) => {
    sameFloat(ins);
    const x = ins[0]!;
    const c = x.shape[x.shape.length - 1];
    for (const p of ins.slice(1)) {
      if (p.shape.length !== 1 || p.shape[0] !== c) throw new Error(`weight/bias must be [${c}] (the last axis), got ${describe(p)}`);
    }
    return x;
  },
  lower: (b, [x, w, bias], { eps }) => b.node('LayerNormalization', bias ? [x!, w!, bias] : [x!, w!], { axis: A.i(-1), epsilon: A.f(eps) }),
  grad: (g, [x, w, b], _y, { eps }) => {
    const { xhat, rstd } = normalizeLast(x!, eps);
    const c = x!.shape[x!.rank - 1]!;
    return [normalizeLastGrad(mul(g, w!), xhat, rstd), sumToShape(mul(g, xhat), [c]), ...(b ? [sumToShape(g, [c])] : [])];
  },
});
/** LayerNorm over the last axis; `bias` may be null (PyTorch `bias=False`). */
export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps = 1e-5): Tensor {
  return apply(LayerNormOp, bias ? [x, weight, bias] : [x, weight], { eps });
}

export interface GroupNormAttrs { groups: number; eps: number }
export const GroupNormOp: OpDef<GroupNormAttrs> = defineOp({
  name: 'groupNorm',
  infer: (ins, { groups }) => {
    sameFloat(ins);
    const [x, w, b] = ins as [TensorInfo, TensorInfo, TensorInfo];
    if (x.shape.length < 2) throw new Error('input must be [N, C, ...]');
    const c = x.shape[1]!;
    if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) throw new Error(`${c} channels do not split into ${groups} groups`);
    for (const p of [w, b]) if (p.shape.length !== 1 || p.shape[0] !== c) throw new Error(`weight/bias must be [${c}], got ${describe(p)}`);
    return x;
  },
  lower: (b, [x, w, bias], { groups, eps }) => b.node('GroupNormalization', [x!, w!, bias!], { num_groups: A.i(groups), epsilon: A.f(eps) }),
  grad: (g, [x, w], _y, { groups, eps }) => {
    const [n, c] = x!.shape as [number, number];
    const perGroup = [n, groups, -1];
    const { xhat: xg, rstd } = normalizeLast(reshape(x!, perGroup), eps);
    const xhat = reshape(xg, x!.shape);
    const wb = reshape(w!, [1, c, ...x!.shape.slice(2).map(() => 1)]);
    const gx = reshape(normalizeLastGrad(reshape(mul(g, wb), perGroup), xg, rstd), x!.shape);
    return [gx, sumToShape(mul(g, xhat), wb.shape), sumToShape(g, wb.shape)].map((t, i) => (i === 0 ? t : reshape(t, [c])));
  },
});
/** GroupNorm over [N, C, ...] (ONNX opset-21 semantics: per-channel affine). Without affine, pass null weight/bias. */
export function groupNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, groups: number, eps = 1e-5): Tensor {
  // ONNX wants [C]-shaped scale and bias; without affine parameters they are broadcast scalars.
  const c = [x.shape[1] ?? 0];
  const w = weight ?? expand(x.graph.scalar(1, x.dtype), c);
  const b = bias ?? expand(x.graph.scalar(0, x.dtype), c);
  return apply(GroupNormOp, [x, w, b], { groups, eps });
}

// ---- convolution ----
export interface Conv2dAttrs { stride: number; padding: number; groups: number }
function convOut(h: number, k: number, s: number, p: number): number { return Math.floor((h + 2 * p - k) / s) + 1; }

export const Conv2dOp: OpDef<Conv2dAttrs> = defineOp({
  name: 'conv2d',
  infer: (ins, { stride, padding, groups }) => {
    sameFloat(ins);
    const [x, w, b] = ins as [TensorInfo, TensorInfo, TensorInfo | undefined];
    if (x.shape.length !== 4 || w.shape.length !== 4) throw new Error('input must be [N,C,H,W] and weight [O,C/groups,kH,kW]');
    const [n, c, h, wd] = x.shape as [number, number, number, number];
    const [o, ci, kh, kw] = w.shape as [number, number, number, number];
    if (c % groups !== 0 || o % groups !== 0 || ci * groups !== c) throw new Error(`weight expects ${ci}×${groups} input channels, input has ${c}`);
    if (b && (b.shape.length !== 1 || b.shape[0] !== o)) throw new Error(`bias must be [${o}]`);
    const ho = convOut(h, kh, stride, padding), wo = convOut(wd, kw, stride, padding);
    if (ho < 1 || wo < 1) throw new Error('kernel larger than padded input');
    return { shape: [n, o, ho, wo], dtype: x.dtype };
  },
  lower: (b, ins, { stride, padding, groups }, { ins: infos }) => {
    const w = infos[1]!.shape;
    return b.node('Conv', ins, {
      kernel_shape: A.is([w[2]!, w[3]!]), strides: A.is([stride, stride]), pads: A.is([padding, padding, padding, padding]), group: A.i(groups),
    });
  },
  grad: (g, [x, w, b], _y, attrs) => [convInputGrad(g, x!, w!, attrs), convWeightGrad(g, x!, w!, attrs), ...(b ? [reduceSum(g, [0, 2, 3])] : [])],
});
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, opts: Partial<Conv2dAttrs> = {}): Tensor {
  const attrs = { stride: opts.stride ?? 1, padding: opts.padding ?? 0, groups: opts.groups ?? 1 };
  return apply(Conv2dOp, bias ? [x, weight, bias] : [x, weight], attrs);
}

// ---- pooling ----
export interface MaxPool2dAttrs { kernel: number; stride: number; ceil: boolean }
/** PyTorch's output size: with ceil_mode a last window must still start inside the input. */
function poolOut(h: number, k: number, s: number, ceil: boolean): number {
  let o = (ceil ? Math.ceil((h - k) / s) : Math.floor((h - k) / s)) + 1;
  if (ceil && (o - 1) * s >= h) o--;
  return o;
}

/** Max pooling over [N, C, H, W] without padding (forward only: no model we train pools). */
export const MaxPool2dOp: OpDef<MaxPool2dAttrs> = defineOp({
  name: 'maxPool2d',
  infer: (ins, { kernel, stride, ceil }) => {
    sameFloat(ins);
    const x = ins[0]!;
    if (x.shape.length !== 4) throw new Error('input must be [N,C,H,W]');
    const [n, c, h, w] = x.shape as [number, number, number, number];
    if (h < kernel || w < kernel) throw new Error(`kernel ${kernel} larger than the input`);
    return { shape: [n, c, poolOut(h, kernel, stride, ceil), poolOut(w, kernel, stride, ceil)], dtype: x.dtype };
  },
  lower: (b, ins, { kernel, stride, ceil }) =>
    b.node('MaxPool', ins, { kernel_shape: A.is([kernel, kernel]), strides: A.is([stride, stride]), ceil_mode: A.i(ceil ? 1 : 0) }),
});
export function maxPool2d(x: Tensor, kernel: number, stride = kernel, ceil = false): Tensor {
  return apply(MaxPool2dOp, [x], { kernel, stride, ceil });
}

export interface ConvTransposeAttrs extends Conv2dAttrs { outputPadding: readonly [number, number] }
/** ConvTranspose (weight [C_in, C_out/groups, kH, kW]); used as the input-gradient of conv2d. */
export const ConvTranspose2dOp: OpDef<ConvTransposeAttrs> = defineOp({
  name: 'convTranspose2d',
  infer: (ins, { stride, padding, groups, outputPadding }) => {
    sameFloat(ins);
    const [x, w] = ins as [TensorInfo, TensorInfo];
    if (x.shape.length !== 4 || w.shape.length !== 4 || w.shape[0] !== x.shape[1]) throw new Error('input [N,C,H,W] needs weight [C, O/groups, kH, kW]');
    const [n, , h, wd] = x.shape as [number, number, number, number];
    const [, oc, kh, kw] = w.shape as [number, number, number, number];
    return { shape: [n, oc * groups, stride * (h - 1) + outputPadding[0] + kh - 2 * padding, stride * (wd - 1) + outputPadding[1] + kw - 2 * padding], dtype: x.dtype };
  },
  lower: (b, ins, { stride, padding, groups, outputPadding }, { ins: infos }) => {
    const w = infos[1]!.shape;
    return b.node('ConvTranspose', ins, {
      kernel_shape: A.is([w[2]!, w[3]!]), strides: A.is([stride, stride]), pads: A.is([padding, padding, padding, padding]),
      group: A.i(groups), output_padding: A.is(outputPadding),
    });
  },
});

function convInputGrad(g: Tensor, x: Tensor, w: Tensor, { stride, padding, groups }: Conv2dAttrs): Tensor {
  // Rows/columns that the strided forward never reached come back as output padding.
  const rest = (axis: 2 | 3): number => x.shape[axis]! - (stride * (g.shape[axis]! - 1) + w.shape[axis]! - 2 * padding);
  const outputPadding = [rest(2), rest(3)] as const;
  return apply(ConvTranspose2dOp, [g, w], { stride, padding, groups, outputPadding });
}

/**
 * dL/dW as a convolution of the input with the output gradient: batch and channel axes swap roles and the
 * forward stride becomes a dilation. Groups are handled one at a time.
 */
function convWeightGrad(g: Tensor, x: Tensor, w: Tensor, { stride, padding, groups }: Conv2dAttrs): Tensor {
  const [o, ci, kh, kw] = w.shape as [number, number, number, number];
  const og = o / groups;
  const parts: Tensor[] = [];
  for (let i = 0; i < groups; i++) {
    const xi = groups === 1 ? x : narrow(x, 1, i * ci, ci);
    const gi = groups === 1 ? g : narrow(g, 1, i * og, og);
    const r = apply(DilatedConvOp, [transpose(xi, [1, 0, 2, 3]), transpose(gi, [1, 0, 2, 3])], { padding, dilation: stride });
    parts.push(slice(transpose(r, [1, 0, 2, 3]), [0, 0], [kh, kw], [2, 3]));
  }
  return concat(parts, 0);
}

/** Stride-1 conv with dilation and no bias: only the weight gradient of conv2d uses it. */
const DilatedConvOp: OpDef<{ padding: number; dilation: number }> = defineOp({
  name: 'conv2dDilated',
  infer: ([x, w], { padding, dilation }) => {
    const [n, , h, wd] = x!.shape as [number, number, number, number];
    const [o, , kh, kw] = w!.shape as [number, number, number, number];
    return { shape: [n, o, h + 2 * padding - dilation * (kh - 1), wd + 2 * padding - dilation * (kw - 1)], dtype: x!.dtype };
  },
  lower: (b, ins, { padding, dilation }, { ins: infos }) => b.node('Conv', ins, {
    kernel_shape: A.is([infos[1]!.shape[2]!, infos[1]!.shape[3]!]), pads: A.is([padding, padding, padding, padding]), dilations: A.is([dilation, dilation]),
  }),
});

// ---- upsampling ----
export const Upsample2xOp: OpDef<void> = defineOp({
  name: 'upsampleNearest2x',
  infer: ([x]) => {
    if (x!.shape.length !== 4) throw new Error('input must be [N,C,H,W]');
    const [n, c, h, w] = x!.shape as [number, number, number, number];
    return { shape: [n, c, 2 * h, 2 * w], dtype: x!.dtype };
  },
  lower: (b, [x]) => {
    const scales = b.node('Constant', [], { value_floats: A.fs([1, 1, 2, 2]) });
    return b.node('Resize', [x!, '', scales], { mode: A.s('nearest'), coordinate_transformation_mode: A.s('asymmetric'), nearest_mode: A.s('floor') });
  },
  grad: (g, [x]) => {
    const [n, c, h, w] = x!.shape as [number, number, number, number];
    return [reduceSum(reshape(g, [n, c, h, 2, w, 2]), [3, 5])];
  },
});
/** Nearest-neighbour ×2 upsampling of [N,C,H,W] (PyTorch `F.interpolate(scale_factor=2, mode='nearest')`). */
export const upsampleNearest2x = (x: Tensor): Tensor => apply(Upsample2xOp, [x], undefined);

/**
 * PReLU of [N, C, …] with one slope per channel (forward only: the imported detectors use it). One ONNX `PRelu`
 * node instead of the max/min/mul/add composite, which streams the activation four times.
 */
export const PReluOp: OpDef<void> = defineOp({
  name: 'prelu',
  infer: (ins) => {
    sameFloat(ins);
    const [x, slope] = ins as [TensorInfo, TensorInfo];
    if (x.shape.length < 2 || slope.shape.length !== 1 || slope.shape[0] !== x.shape[1]) {
      throw new Error(`slope must be [${x.shape[1]}] for input [${x.shape.join(', ')}]`);
    }
    return { shape: x.shape, dtype: x.dtype };
  },
  lower: (b, [x, slope], _attrs, { ins: infos }) => {
    // ONNX broadcasts the slope from the right: [C] → [C, 1, …] for the channel axis.
    const rank = infos[0]!.shape.length;
    const c = infos[1]!.shape[0]!;
    const shaped = rank > 2 ? b.node('Reshape', [slope!, b.i64([c, ...Array<number>(rank - 2).fill(1)])]) : slope!;
    return b.node('PRelu', [x!, shaped]);
  },
});
export const prelu = (x: Tensor, slope: Tensor): Tensor => apply(PReluOp, [x, slope], undefined);

/** How output pixel centres map to input coordinates (ONNX Resize's coordinate_transformation_mode). */
export type ResizeCoordinates = 'half_pixel' | 'align_corners' | 'asymmetric';
export interface ResizeBilinearAttrs { height: number; width: number; coordinates: ResizeCoordinates }
/**
 * Bilinear resize of [N,C,H,W] to a fixed size (forward only: imported inference models use it). 'half_pixel' is
 * TensorFlow's `half_pixel_centers=True` and PyTorch's `align_corners=False` when upsampling.
 */
export const ResizeBilinearOp: OpDef<ResizeBilinearAttrs> = defineOp({
  name: 'resizeBilinear',
  infer: ([x], { height, width }) => {
    if (x!.shape.length !== 4) throw new Error('input must be [N,C,H,W]');
    if (!(height >= 1 && width >= 1)) throw new Error(`resize target must be positive, got ${height}×${width}`);
    return { shape: [x!.shape[0]!, x!.shape[1]!, height, width], dtype: x!.dtype };
  },
  lower: (b, [x], { height, width, coordinates }, { ins: infos }) => {
    const [n, c] = infos[0]!.shape as [number, number];
    const sizes = b.node('Constant', [], { value_ints: A.is([n, c, height, width]) });
    return b.node('Resize', [x!, '', '', sizes], { mode: A.s('linear'), coordinate_transformation_mode: A.s(coordinates) });
  },
});
export function resizeBilinear(x: Tensor, height: number, width: number, coordinates: ResizeCoordinates): Tensor {
  return apply(ResizeBilinearOp, [x], { height, width, coordinates });
}

// ---- GELU ----
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
export const GeluOp: OpDef<{ approximate: 'none' | 'tanh' }> = defineOp({
  name: 'gelu',
  infer: ([x]) => {
    if (!isFloat(x!.dtype)) throw new Error(`needs a float input, got ${x!.dtype}`);
    return x!;
  },
  lower: (b, [x], { approximate }) => b.node('Gelu', [x!], { approximate: A.s(approximate) }),
  grad: (g, [x], _y, { approximate }) => {
    const xv = x!;
    if (approximate === 'none') {
      const cdf = mul(add(erf(mul(xv, Math.SQRT1_2)), 1), 0.5);
      const pdf = mul(exp(mul(mul(xv, xv), -0.5)), 1 / Math.sqrt(2 * Math.PI));
      return [mul(g, add(cdf, mul(xv, pdf)))];
    }
    const x2 = mul(xv, xv);
    const t = tanh(mul(add(xv, mul(mul(x2, xv), 0.044715)), SQRT_2_OVER_PI));
    const du = mul(add(mul(x2, 3 * 0.044715), 1), SQRT_2_OVER_PI);
    const d = add(mul(add(t, 1), 0.5), mul(mul(mul(xv, 0.5), sub(1, mul(t, t))), du));
    return [mul(g, d)];
  },
});
/** GELU; `approximate: 'tanh'` is PyTorch's `gelu(approximate='tanh')` (the "gelu_pytorch_tanh" of configs). */
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor => apply(GeluOp, [x], { approximate });

