// Graph building rules, build-time errors, sessions (params as inputs, in-place updates), VJP inputs, fp16.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as C from './index.ts';
import { Linear } from '../nn/index.ts';
import { randn, rng } from './testing/reference.ts';

test('invalid graphs fail at build time with the op name and the input shapes', () => {
  const g = new C.Graph();
  const a = g.input('a', [2, 3]), b = g.input('b', [4, 5]);
  assert.throws(() => C.matmul(a, b), /matmul: inner dimensions differ: 3 vs 4 \(inputs: float32\[2,3\], float32\[4,5\]\)/);
  assert.throws(() => C.add(a, g.input('c', [3, 2])), /add: shapes \[2,3\] and \[3,2\] do not broadcast \(inputs: float32\[2,3\], float32\[3,2\]\)/);
  const i = g.input('i', [2, 3], 'int64');
  assert.throws(() => C.mul(a, i), /mul: dtypes differ: float32\[2,3\] vs int64\[2,3\]/);
  assert.throws(() => C.exp(i), /exp: needs a float input, got int64 \(inputs: int64\[2,3\]\)/);
  assert.throws(() => C.reshape(a, [4, 2]), /reshape: cannot reshape float32\[2,3\] to \[4,2\]/);
  assert.throws(() => C.layerNorm(a, g.param('w', [4]), null), /layerNorm: weight\/bias must be \[3\]/);
  assert.throws(() => C.conv2d(g.input('x', [1, 3, 8, 8]), g.param('k', [4, 2, 3, 3]), null), /conv2d: weight expects 2×1 input channels, input has 3/);
  assert.throws(() => C.groupNorm(g.input('y', [1, 6, 2, 2]), null, null, 4), /groupNorm: 6 channels do not split into 4 groups/);
  assert.throws(() => C.sdpa(a, a, a), /sdpa: expected q \[B,H,Lq,D\]/);
  assert.throws(() => C.gather(a, a), /gather: indices must be int64\/int32/);
  assert.throws(() => g.param('w', [5]), /param "w" declared twice with different kind\/shape\/dtype/);
  const other = new C.Graph().input('a', [2, 3]);
  assert.throws(() => C.add(a, other), /add: input float32\[2,3\] belongs to another graph/);
});

test('unknown ops fail when built; ops without a gradient rule fail when differentiated', async () => {
  const g = new C.Graph();
  const x = g.input('x', [3]);
  const unregistered: C.OpDef<void> = { name: 'mystery', infer: ([t]) => t!, lower: (b, [t]) => b.node('Identity', [t!]) };
  assert.throws(() => g.apply(unregistered, [x], undefined), /unknown op "mystery": not in the op table .*\(inputs: float32\[3\]\)/);
  assert.throws(() => C.defineOp({ ...unregistered, name: 'matmul' }), /an op named "matmul" is already in the op table/);
  assert.ok(C.opTable().has('conv2d') && C.opTable().has('sdpaBlock'));
  const noGrad = C.defineOp<void>({ name: 'test.noGrad', infer: ([t]) => t!, lower: (b, [t]) => b.node('Identity', [t!]) });
  const y = g.apply(noGrad, [x], undefined);
  assert.throws(() => C.grad(C.sumAll(y), [x]), /op test\.noGrad has no gradient rule \(inputs: float32\[3\]\)/);
  // An entry lowering to an ONNX op that does not exist: ORT rejects the model when the session is created.
  const bogus = C.defineOp<void>({ name: 'test.bogus', infer: ([t]) => t!, lower: (b, [t]) => b.node('NoSuchOnnxOp', [t!]) });
  await assert.rejects(C.Session.create({ z: g.apply(bogus, [x], undefined) }), /NoSuchOnnxOp/);
});

test('parameters: declared without data, listed with shapes, missing values named at session creation', async () => {
  const g = new C.Graph();
  const x = g.input('x', [1, 4]);
  const y = new Linear(g, 'a', 4, 3).forward(x);
  assert.deepEqual(g.params().map((p) => p.name), ['a.weight', 'a.bias']);
  assert.equal(g.paramCount(), 15);
  await assert.rejects(C.Session.create({ y }, { params: new Map([['a.weight', new Float32Array(12)]]) }), /1 parameter\(s\) missing from the store: a\.bias/);
  await assert.rejects(C.Session.create({ y }, { params: new Map([['a.weight', new Float32Array(11)], ['a.bias', new Float32Array(3)]]) }),
    /parameter "a.weight": expected 12 values for shape \[3,4\], got 11/);
});

test('lowering emits only what the outputs need: unused params are not inputs of that model', () => {
  const g = new C.Graph();
  const x = g.input('x', [2]);
  const a = C.mul(x, g.param('pa', [2]));
  C.mul(x, g.param('pb', [2]));
  const m = C.lower({ a });
  assert.deepEqual(m.inputs.map((i) => `${i.kind}:${i.name}`), ['input:x', 'param:pa']);
  assert.ok(m.bytes.length > 0 && m.bytes.length < 1000);
});

test('session reuses parameter buffers: in-place updates are seen, setParam swaps buffers; missing feeds are named', async () => {
  const g = new C.Graph();
  const x = g.input('x', [2]);
  const w = g.param('w', [2]);
  const y = C.mul(x, w);
  const wData = Float32Array.of(1, 2);
  const s = await C.Session.create({ y }, { params: new Map([['w', wData]]), threads: 1, arena: false });
  assert.equal(s.provider, 'cpu');
  assert.deepEqual([...(await s.run({ x: Float32Array.of(3, 4) })).y!.data as Float32Array], [3, 8]);
  wData[0] = 10;
  assert.deepEqual([...(await s.run({ x: Float32Array.of(3, 4) })).y!.data as Float32Array], [30, 8]);
  s.setParam('w', Float32Array.of(-1, -1));
  assert.deepEqual([...(await s.run({ x: Float32Array.of(3, 4) })).y!.data as Float32Array], [-3, -4]);
  await assert.rejects(s.run({}), /missing input "x" \(float32\[2\]\)/);
  await s.release();
});

test('vjpInput: upstream gradient fed as an input gives the VJP (dL/dy computed outside the graph)', async () => {
  const g = new C.Graph();
  const x = g.input('x', [3]);
  const y = C.mul(C.sin(x), 2);
  const { grads: [gx] } = C.vjpInput(y, [x], 'dy');
  const xd = Float32Array.of(0.1, 0.5, -1), dy = Float32Array.of(1, -2, 3);
  const r = await C.evaluate({ gx: gx! }, { x: xd, dy });
  const want = [...xd].map((v, i) => 2 * Math.cos(v) * dy[i]!);
  (r.gx!.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6));
});

test('grad of intermediate values and of unused inputs (zeros)', async () => {
  const g = new C.Graph();
  const x = g.input('x', [2]), unused = g.input('u', [2]);
  const h = C.mul(x, x);
  const loss = C.sumAll(C.mul(h, 3));
  const [gh, gx, gu] = C.grad(loss, [h, x, unused]);
  const r = await C.evaluate({ gh: gh!, gx: gx!, gu: gu! }, { x: Float32Array.of(1, -2) });
  assert.deepEqual([...r.gh!.data as Float32Array], [3, 3]);
  assert.deepEqual([...r.gx!.data as Float32Array], [6, -12]);
  assert.deepEqual([...r.gu!.data as Float32Array], [0, 0]);
});

test('fp16 weights: Linear with float16 storage matches fp32 compute on the rounded weights', async () => {
  const r = rng(3);
  const w32 = randn(r, 16 * 8, 0.3), b32 = randn(r, 16, 0.3), x = randn(r, 4 * 8);
  const w16 = C.toHalfArray(w32), b16 = C.toHalfArray(b32);
  const g = new C.Graph();
  const xt = g.input('x', [4, 8]);
  const lin = new Linear(g, 'fc', 8, 16, { dtype: 'float16' });
  assert.equal(g.params()[0]!.dtype, 'float16');
  // fp16 storage with fp32 compute, and fully fp16 compute.
  const y32 = lin.forward(xt);
  const y16 = C.cast(lin.forward(C.cast(xt, 'float16')), 'float32');
  const res = await C.evaluate({ y32, y16 }, { x }, { params: new Map([['fc.weight', w16], ['fc.bias', b16]]) });
  const wr = C.fromHalfArray(w16), br = C.fromHalfArray(b16);
  for (let i = 0; i < 4; i++) for (let o = 0; o < 16; o++) {
    let s = br[o]!;
    for (let k = 0; k < 8; k++) s += x[i * 8 + k]! * wr[o * 8 + k]!;
    const a = (res.y32!.data as Float32Array)[i * 16 + o]!, h = (res.y16!.data as Float32Array)[i * 16 + o]!;
    assert.ok(Math.abs(a - s) < 1e-5, `fp32 compute: ${a} vs ${s}`);
    assert.ok(Math.abs(h - s) < 1e-2 * (1 + Math.abs(s)), `fp16 compute: ${h} vs ${s}`);
  }
});

test('toHalf/fromHalf round trips and rounds to nearest even', () => {
  for (const v of [0, -0, 1, -2.5, 65504, 6.1035156e-5, 5.96e-8, 1 / 3]) {
    const h = C.toHalf(v);
    assert.ok(Math.abs(C.fromHalf(h) - v) <= Math.abs(v) * 2 ** -11 + 2 ** -25, `${v}`);
  }
  assert.equal(C.toHalf(1 + 2 ** -11), 0x3c00); // tie → even
  assert.equal(C.toHalf(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(C.fromHalf(C.toHalf(1e6)), Infinity);
});
