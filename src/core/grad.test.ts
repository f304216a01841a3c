// Finite-difference checks of every differentiable op's gradient rule (see testing/gradcheck.ts for the method).
// Bound: |analytic − numeric| ≤ 1e-3 + 1e-2·max(|analytic|, |numeric|), ε = 1e-2, unless a case states otherwise.
import { test } from 'node:test';
import * as C from './index.ts';
import { gradCheck, type GradCase } from './testing/gradcheck.ts';

/** Moves values at least `gap` away from 0 (for kinks of relu/abs and poles of log/div). */
const away = (gap: number) => (v: Float32Array): Float32Array => v.map((x) => (x >= 0 ? x + gap : x - gap));
const positive = (v: Float32Array): Float32Array => v.map((x) => Math.abs(x) + 0.5);
const spread = (v: Float32Array): Float32Array => v.map((x, i) => x * 0.1 + (i % 7) * 0.4); // distinct values: no ties in max/min

const cases: Record<string, GradCase> = {
  'add (broadcast)': { inputs: { a: [2, 1, 3], b: [4, 1] }, build: ({ a, b }) => C.add(a!, b!) },
  'sub (broadcast)': { inputs: { a: [3], b: [2, 3] }, build: ({ a, b }) => C.sub(a!, b!) },
  'mul (broadcast)': { inputs: { a: [2, 3], b: [2, 1] }, build: ({ a, b }) => C.mul(a!, b!) },
  'div (broadcast)': { inputs: { a: [2, 3], b: [3] }, build: ({ a, b }) => C.div(a!, b!), prep: { b: away(0.8) } },
  pow: { inputs: { a: [2, 3], b: [2, 3] }, build: ({ a, b }) => C.pow(a!, b!), prep: { a: positive } },
  minimum: { inputs: { a: [2, 4], b: [2, 4] }, build: ({ a, b }) => C.minimum(a!, b!), prep: { a: spread, b: (v) => spread(v).map((x, i) => x + (i % 2 ? 0.2 : -0.2)) } },
  maximum: { inputs: { a: [2, 4], b: [4] }, build: ({ a, b }) => C.maximum(a!, b!), prep: { a: spread, b: (v) => spread(v).map((x) => x + 0.2) } },
  neg: { inputs: { a: [5] }, build: ({ a }) => C.neg(a!) },
  exp: { inputs: { a: [5] }, build: ({ a }) => C.exp(a!) },
  log: { inputs: { a: [5] }, build: ({ a }) => C.log(a!), prep: { a: positive } },
  sqrt: { inputs: { a: [5] }, build: ({ a }) => C.sqrt(a!), prep: { a: positive } },
  abs: { inputs: { a: [6] }, build: ({ a }) => C.abs(a!), prep: { a: away(0.1) } },
  erf: { inputs: { a: [6] }, build: ({ a }) => C.erf(a!) },
  tanh: { inputs: { a: [6] }, build: ({ a }) => C.tanh(a!) },
  sigmoid: { inputs: { a: [6] }, build: ({ a }) => C.sigmoid(a!) },
  relu: { inputs: { a: [6] }, build: ({ a }) => C.relu(a!), prep: { a: away(0.1) } },
  cos: { inputs: { a: [6] }, build: ({ a }) => C.cos(a!) },
  sin: { inputs: { a: [6] }, build: ({ a }) => C.sin(a!) },
  silu: { inputs: { a: [6] }, build: ({ a }) => C.silu(a!) },
  'gelu (erf)': { inputs: { a: [8] }, build: ({ a }) => C.gelu(a!) },
  'gelu (tanh)': { inputs: { a: [8] }, build: ({ a }) => C.gelu(a!, 'tanh') },
  where: { inputs: { a: [2, 3], b: [3] }, build: ({ a, b }) => C.where(C.greater(a!, 0.1), C.mul(a!, a!), b!) , prep: { a: away(0.2) } },
  clip: { inputs: { a: [8] }, build: ({ a }) => C.clip(a!, -0.5, 0.5), prep: { a: (v) => v.map((x) => (Math.abs(Math.abs(x) - 0.5) < 0.05 ? x + 0.1 : x)) } },
  'cast fp32→fp16→fp32 (gradient passes through)': { inputs: { a: [4] }, build: ({ a }) => C.cast(C.cast(a!, 'float16'), 'float32'), eps: 0.25, rtol: 2e-2, atol: 2e-2 },
  'matmul (batched, broadcast)': { inputs: { a: [2, 1, 3, 4], b: [3, 4, 2] }, build: ({ a, b }) => C.matmul(a!, b!) },
  'linear with bias (x·Wᵀ + b)': { inputs: { x: [2, 3, 4], w: [5, 4], b: [5] }, build: ({ x, w, b }) => C.linear(x!, w!, b!) },
  'linear without bias, 2-D': { inputs: { x: [3, 4], w: [2, 4] }, build: ({ x, w }) => C.linear(x!, w!) },
  softmax: { inputs: { a: [3, 5] }, build: ({ a }) => C.softmax(a!, 0) },
  logSoftmax: { inputs: { a: [3, 5] }, build: ({ a }) => C.logSoftmax(a!) },
  'layerNorm with bias': { inputs: { x: [3, 6], w: [6], b: [6] }, build: ({ x, w, b }) => C.layerNorm(x!, w!, b!) },
  'layerNorm without bias': { inputs: { x: [2, 2, 5], w: [5] }, build: ({ x, w }) => C.layerNorm(x!, w!, null, 1e-6) },
  'groupNorm affine': { inputs: { x: [2, 4, 3, 2], w: [4], b: [4] }, build: ({ x, w, b }) => C.groupNorm(x!, w!, b!, 2) },
  'groupNorm plain': { inputs: { x: [1, 6, 2, 2] }, build: ({ x }) => C.groupNorm(x!, null, null, 3) },
  'conv2d stride 2, pad 1, groups 2, bias': { inputs: { x: [2, 4, 5, 6], w: [6, 2, 3, 3], b: [6] }, build: ({ x, w, b }) => C.conv2d(x!, w!, b!, { stride: 2, padding: 1, groups: 2 }) },
  'conv2d 3×3 same': { inputs: { x: [1, 3, 4, 4], w: [2, 3, 3, 3] }, build: ({ x, w }) => C.conv2d(x!, w!, null, { padding: 1 }) },
  upsampleNearest2x: { inputs: { x: [1, 2, 2, 3] }, build: ({ x }) => C.upsampleNearest2x(x!) },
  'reshape + transpose': { inputs: { x: [2, 3, 4] }, build: ({ x }) => C.transpose(C.reshape(x!, [4, 6]), [1, 0]) },
  concat: { inputs: { a: [2, 3], b: [2, 1] }, build: ({ a, b }) => C.concat([a!, b!, a!], 1) },
  'slice + pad': { inputs: { x: [4, 5] }, build: ({ x }) => C.pad(C.slice(x!, [1, 1], [3, 4]), [1, 0, 0, 2]) },
  split: { inputs: { x: [6, 2] }, build: ({ x }) => { const [a, b] = C.split(x!, [2, 4], 0); return C.mul(C.reduceSum(a!, 0), C.reduceMean(b!, 0)); } },
  expand: { inputs: { x: [3, 1] }, build: ({ x }) => C.expand(x!, [2, 3, 4]) },
  'gather (repeated indices)': { inputs: { x: [5, 3] }, build: ({ x }, g) => C.gather(x!, g.constant(BigInt64Array.from([4, 0, 4, 2], BigInt), [2, 2]), 0) },
  reduceSum: { inputs: { x: [2, 3, 4] }, build: ({ x }) => C.reduceSum(x!, [0, 2]) },
  reduceMean: { inputs: { x: [2, 3, 4] }, build: ({ x }) => C.reduceMean(x!, 1, true) },
  reduceMax: { inputs: { x: [3, 4] }, build: ({ x }) => C.reduceMax(x!, 1), prep: { x: spread } },
  'sdpa chunked over queries and heads': {
    inputs: { q: [1, 2, 7, 4], k: [1, 2, 5, 4], v: [1, 2, 5, 3] },
    build: ({ q, k, v }) => C.sdpa(q!, k!, v!, { chunk: 3, headChunk: 1 }),
  },
  'sdpa with rematerialised blocks': {
    inputs: { q: [1, 2, 7, 4], k: [1, 2, 5, 4], v: [1, 2, 5, 3] },
    build: ({ q, k, v }) => C.sdpa(q!, k!, v!, { chunk: 4, remat: true, scale: 0.3 }),
  },
  'sdpa fused (ORT MultiHeadAttention forward, recomputed backward)': {
    inputs: { q: [1, 2, 6, 4], k: [1, 2, 5, 4], v: [1, 2, 5, 4] },
    build: ({ q, k, v }) => C.sdpa(q!, k!, v!, { chunk: 4, fused: true }),
  },
  'multiHeadAttention fused on [B,L,C], Dv ≠ D': {
    inputs: { q: [2, 5, 6], k: [2, 4, 6], v: [2, 4, 4] },
    build: ({ q, k, v }) => C.multiHeadAttention(q!, k!, v!, 2, { fused: true, chunk: 2, headChunk: 1 }),
  },
};

for (const [name, c] of Object.entries(cases)) test(`grad: ${name}`, () => gradCheck(name, c));

test('grad: scalar loss of a two-layer net (grad() API, gradients w.r.t. params)', async () => {
  await gradCheck('mlp', {
    inputs: { x: [4, 3], w1: [3, 5], w2: [5, 2] },
    build: ({ x, w1, w2 }) => C.matmul(C.gelu(C.matmul(x!, w1!)), w2!),
  });
});
