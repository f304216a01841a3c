/**
 * A TensorFlow Lite float model rebuilt as a graph on the compute core, operator by operator, so it runs on the
 * same runtime as everything else (onnxruntime in Node, onnxruntime-web later). TFLite is NHWC; the graph is NCHW,
 * and weights are re-laid out once at load. Only the operators that the imported models use are covered; anything
 * else is refused by name.
 */
import {
  add,
  conv2d,
  ConvTranspose2dOp,
  Graph,
  maximum,
  minimum,
  mul,
  div,
  pad,
  reduceMean,
  relu,
  resizeBilinear,
  sigmoid,
  slice,
  apply,
  type Tensor,
} from '../core/index.ts';
import type { TfliteModel, TfliteOperator, TfliteOptions } from '../io/tflite.ts';
import { UserError } from '../util/errors.ts';

export interface TfliteGraph {
  /** The graph's outputs, NCHW, named `out0`, `out1`, … in the model's output order. */
  outputs: Record<string, Tensor>;
  /** Weights, already in the graph's layout, by parameter name. */
  params: Map<string, Float32Array>;
  /** The model's input as NCHW ([1, C, H, W]); fed as `x`. */
  inputShape: [number, number, number, number];
}

/** schema.fbs `ActivationFunctionType`. */
function activate(x: Tensor, code: number, where: string): Tensor {
  if (code === 0) return x;
  if (code === 1) return relu(x);
  if (code === 3) return minimum(relu(x), 6);
  throw new UserError(`${where}: fused activation ${code} is not supported`);
}

const hardSwish = (x: Tensor): Tensor => mul(x, div(minimum(maximum(add(x, 3), 0), 6), 6));

/** TensorFlow's SAME padding along one axis: [before, after]. */
function samePads(size: number, k: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** NHWC shape → NCHW (other ranks unchanged). */
const nchw = (s: number[]): number[] => (s.length === 4 ? [s[0]!, s[3]!, s[1]!, s[2]!] : s);

/** Re-lays a 4-D constant: `perm[i]` is the source axis of destination axis i. */
function permute(data: Float32Array, shape: number[], perm: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  const dst = perm.map((p) => shape[p]!);
  const srcStride = [shape[1]! * shape[2]! * shape[3]!, shape[2]! * shape[3]!, shape[3]!, 1];
  const st = perm.map((p) => srcStride[p]!);
  let i = 0;
  for (let a = 0; a < dst[0]!; a++) {
    for (let b = 0; b < dst[1]!; b++) {
      for (let c = 0; c < dst[2]!; c++) {
        for (let d = 0; d < dst[3]!; d++) out[i++] = data[a * st[0]! + b * st[1]! + c * st[2]! + d * st[3]!]!;
      }
    }
  }
  return out;
}

/** Builds the graph of `model` (one NHWC float input). `name` names the graph. */
export function tfliteGraph(model: TfliteModel, name: string): TfliteGraph {
  const g = new Graph(name);
  const params = new Map<string, Float32Array>();
  const values = new Map<number, Tensor>();
  const consts = new Map<number, Float32Array | Int32Array>();
  for (const [i, t] of model.tensors.entries()) if (t.data) consts.set(i, t.data);

  const inIdx = model.inputs[0];
  const inT = inIdx === undefined ? undefined : model.tensors[inIdx];
  if (model.inputs.length !== 1 || inIdx === undefined || !inT || inT.shape.length !== 4) {
    throw new UserError(`${name}: expected one image input [1, H, W, C]`);
  }
  const inputShape = nchw(inT.shape) as [number, number, number, number];
  values.set(inIdx, g.input('x', inputShape));

  const value = (i: number, where: string): Tensor => {
    const v = values.get(i);
    if (!v) throw new UserError(`${where}: input ${model.tensors[i]?.name ?? i} is not computed by the graph`);
    return v;
  };
  const constant = (i: number, where: string): Float32Array => {
    const d = consts.get(i);
    if (!(d instanceof Float32Array)) {
      throw new UserError(`${where}: expected float constant ${model.tensors[i]?.name ?? i}`);
    }
    return d;
  };
  const shapeOf = (i: number, where: string): number[] => {
    const t = model.tensors[i];
    if (!t) throw new UserError(`${where}: tensor ${i} does not exist`);
    return t.shape;
  };
  const param = (key: string, data: Float32Array, shape: number[]): Tensor => {
    params.set(key, data);
    return g.param(key, shape);
  };

  for (const [n, op] of model.operators.entries()) {
    const where = `${name} operator ${n} (${op.op})`;
    const out = op.outputs[0];
    if (out === undefined) throw new UserError(`${where} has no output`);
    const opt = (): TfliteOptions => {
      if (!op.options) throw new UserError(`${where} has no options`);
      return op.options;
    };
    const set = (t: Tensor): void => { values.set(out, t); };
    // -1 is TFLite's "no tensor"; `value` and `constant` refuse it by name.
    const [in0 = -1, in1 = -1] = op.inputs;
    switch (op.op) {
      case 'DEQUANTIZE':
        // Float16 constants are widened when read; the dequantised tensor is that constant.
        consts.set(out, constant(in0, where));
        break;
      case 'CONV_2D':
      case 'DEPTHWISE_CONV_2D':
        set(convolution(op, where));
        break;
      case 'Convolution2DTransposeBias':
        set(transposeConvBias(op, where));
        break;
      case 'HARD_SWISH':
        set(hardSwish(value(in0, where)));
        break;
      case 'RELU':
        set(relu(value(in0, where)));
        break;
      case 'RELU6':
        set(minimum(relu(value(in0, where)), 6));
        break;
      case 'LOGISTIC':
        set(sigmoid(value(in0, where)));
        break;
      case 'ADD':
      case 'MUL': {
        const [a, b] = op.inputs.map((i) => operand(i, where));
        const y = op.op === 'ADD' ? add(a!, b!) : mul(a!, b!);
        set(activate(y, op.options?.int8(0) ?? 0, where));
        break;
      }
      case 'AVERAGE_POOL_2D': {
        const x = value(in0, where);
        const o = opt();
        const [h, w] = [x.shape[2]!, x.shape[3]!];
        if (o.int32(3) !== w || o.int32(4) !== h) {
          throw new UserError(`${where}: only global average pooling is supported`);
        }
        set(activate(reduceMean(x, [2, 3], true), o.int8(5), where));
        break;
      }
      case 'RESIZE_BILINEAR': {
        const x = value(in0, where);
        const size = consts.get(in1);
        if (!size || size.length !== 2) throw new UserError(`${where}: the target size must be a constant`);
        const o = opt();
        const mode = o.bool(2) ? 'align_corners' : o.bool(3) ? 'half_pixel' : 'asymmetric';
        set(resizeBilinear(x, size[0]!, size[1]!, mode));
        break;
      }
      default:
        throw new UserError(`${name}: TFLite operator ${op.op} is not supported`);
    }
  }

  const outputs: Record<string, Tensor> = {};
  for (const [k, i] of model.outputs.entries()) outputs[`out${k}`] = value(i, `${name} output ${k}`);
  return { outputs, params, inputShape };

  /** An elementwise operand: a computed value, or a constant broadcast in NCHW. */
  function operand(i: number, where: string): Tensor {
    const v = values.get(i);
    if (v) return v;
    const d = constant(i, where);
    const shape = shapeOf(i, where);
    if (shape.length === 4) return param(`t${i}`, permute(d, shape, [0, 3, 1, 2]), nchw(shape));
    // Rank-1 constants broadcast over TFLite's last axis, which is channels.
    if (shape.length === 1) return param(`t${i}`, d, [1, shape[0]!, 1, 1]);
    return d.length === 1 ? g.scalar(d[0]!) : param(`t${i}`, d, shape);
  }

  function convolution(op: TfliteOperator, where: string): Tensor {
    const [xIdx = -1, wIdx = -1, bIdx = -1] = op.inputs;
    const x = value(xIdx, where);
    const wShape = shapeOf(wIdx, where);
    const o = op.options;
    const depthwise = op.op === 'DEPTHWISE_CONV_2D';
    // Conv2DOptions: padding, stride_w, stride_h, activation, dilation_w, dilation_h;
    // DepthwiseConv2DOptions puts depth_multiplier before the activation.
    const [sw, sh] = [o?.int32(1) ?? 1, o?.int32(2) ?? 1];
    const act = o?.int8(depthwise ? 4 : 3) ?? 0;
    const dil = depthwise ? [o?.int32(5, 1) ?? 1, o?.int32(6, 1) ?? 1] : [o?.int32(4, 1) ?? 1, o?.int32(5, 1) ?? 1];
    if (sw !== sh || dil[0] !== 1 || dil[1] !== 1) {
      throw new UserError(`${where}: unequal strides or dilation are not supported`);
    }
    const [kh, kw] = [wShape[1]!, wShape[2]!];
    const cin = x.shape[1]!;
    let weight: Tensor;
    let groups = 1;
    if (depthwise) {
      // [1, kH, kW, C·m] → [C·m, 1, kH, kW], one group per input channel.
      weight = param(`t${wIdx}`, permute(constant(wIdx, where), wShape, [3, 0, 1, 2]), [wShape[3]!, 1, kh, kw]);
      groups = cin;
    } else {
      const oihw = permute(constant(wIdx, where), wShape, [0, 3, 1, 2]);
      weight = param(`t${wIdx}`, oihw, [wShape[0]!, wShape[3]!, kh, kw]);
    }
    const bias = bIdx < 0 ? null : param(`t${bIdx}`, constant(bIdx, where), [weight.shape[0]!]);
    let input = x;
    let padding = 0;
    if ((o?.int8(0) ?? 0) === 0) {
      const [pt, pb] = samePads(x.shape[2]!, kh, sh);
      const [pl, pr] = samePads(x.shape[3]!, kw, sw);
      if (pt === pb && pl === pr && pt === pl) padding = pt;
      else input = pad(x, [0, 0, pt, pl, 0, 0, pb, pr]);
    }
    return activate(conv2d(input, weight, bias, { stride: sh, padding, groups }), act, where);
  }

  /** MediaPipe's custom transposed convolution with bias; options are TfLiteTransposeConvParams' three int32s. */
  function transposeConvBias(op: TfliteOperator, where: string): Tensor {
    if (op.custom.length < 12) throw new UserError(`${where}: options missing`);
    const opts = new DataView(op.custom.buffer, op.custom.byteOffset, 12);
    const [padding, sw, sh] = [opts.getInt32(0, true), opts.getInt32(4, true), opts.getInt32(8, true)];
    if (sw !== sh) throw new UserError(`${where}: unequal strides are not supported`);
    const [xIdx = -1, wIdx = -1, bIdx = -1] = op.inputs;
    const x = value(xIdx, where);
    const ws = shapeOf(wIdx, where);
    // [O, kH, kW, I] → ONNX ConvTranspose's [I, O, kH, kW].
    const iohw = permute(constant(wIdx, where), ws, [3, 0, 1, 2]);
    const weight = param(`t${wIdx}`, iohw, [ws[3]!, ws[0]!, ws[1]!, ws[2]!]);
    const attrs = { stride: sh, padding: 0, groups: 1, outputPadding: [0, 0] as const };
    let y = apply(ConvTranspose2dOp, [x, weight], attrs);
    if (padding === 1) {
      // SAME: the output is input × stride, cropped from the full result as TensorFlow centres it.
      const [h, w] = [x.shape[2]! * sh, x.shape[3]! * sw];
      const top = Math.floor((y.shape[2]! - h) / 2);
      const left = Math.floor((y.shape[3]! - w) / 2);
      if (y.shape[2] !== h || y.shape[3] !== w) y = slice(y, [top, left], [top + h, left + w], [2, 3]);
    }
    if (bIdx >= 0) {
      y = add(y, param(`t${bIdx}`, constant(bIdx, where), [1, ws[0]!, 1, 1]));
    }
    return y;
  }
}
