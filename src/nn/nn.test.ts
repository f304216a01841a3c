// nn layers: PyTorch parameter names/shapes, and forward numerics against the float64 reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Graph, evaluate, type ParamStore, type Tensor } from '../core/index.ts';
import * as R from '../core/testing/reference.ts';
import { assertClose } from '../core/testing/check.ts';
import { Conv2d, GroupNorm, LayerNorm, Linear, Mlp, SelfAttention } from './index.ts';

/** Random values for every parameter of the graph, plus reference arrays of them. */
function randomParams(g: Graph, seed = 3): { store: ParamStore; ref: Record<string, R.Arr> } {
  const r = R.rng(seed);
  const store: ParamStore = new Map();
  const ref: Record<string, R.Arr> = {};
  for (const p of g.params()) {
    const data = R.randn(r, p.shape.reduce((a, b) => a * b, 1), 0.5);
    store.set(p.name, data);
    ref[p.name] = R.arr(data, [...p.shape]);
  }
  return { store, ref };
}

async function run(g: Graph, y: Tensor, x: Float32Array, store: ParamStore) {
  return (await evaluate({ y }, { x }, { params: store })).y!;
}

test('Linear: PyTorch names and layout, with and without bias', async () => {
  const g = new Graph();
  const x = g.input('x', [2, 3, 4]);
  const a = new Linear(g, 'blocks.0.fc', 4, 5);
  const b = new Linear(g, 'head', 5, 2, { bias: false });
  const y = b.forward(a.forward(x));
  assert.deepEqual(g.params().map((p) => [p.name, [...p.shape]]), [['blocks.0.fc.weight', [5, 4]], ['blocks.0.fc.bias', [5]], ['head.weight', [2, 5]]]);
  assert.equal(g.paramCount(), 20 + 5 + 10);
  const { store, ref } = randomParams(g);
  const xd = R.randn(R.rng(9), 24);
  const t = (w: R.Arr) => R.transpose(w, [1, 0]);
  const h = R.binary(R.matmul(R.arr(xd, [2, 3, 4]), t(ref['blocks.0.fc.weight']!)), ref['blocks.0.fc.bias']!, (p, q) => p + q);
  assertClose(await run(g, y, xd, store), R.matmul(h, t(ref['head.weight']!)));
});

test('LayerNorm without bias (GS-LRM) and with bias', async () => {
  const g = new Graph();
  const x = g.input('x', [2, 6]);
  const n1 = new LayerNorm(g, 'norm1', 6, { bias: false });
  const n2 = new LayerNorm(g, 'norm2', 6, { eps: 1e-6 });
  const y = n2.forward(n1.forward(x));
  assert.deepEqual(g.params().map((p) => p.name), ['norm1.weight', 'norm2.weight', 'norm2.bias']);
  const { store, ref } = randomParams(g);
  const xd = R.randn(R.rng(4), 12);
  const e = R.layerNorm(R.layerNorm(R.arr(xd, [2, 6]), ref['norm1.weight']!, null, 1e-5), ref['norm2.weight']!, ref['norm2.bias']!, 1e-6);
  assertClose(await run(g, y, xd, store), e);
});

test('Conv2d + GroupNorm', async () => {
  const g = new Graph();
  const x = g.input('x', [1, 4, 6, 6]);
  const conv = new Conv2d(g, 'conv_in', 4, 6, 3, { padding: 1, stride: 2 });
  const gn = new GroupNorm(g, 'norm', 3, 6, { eps: 1e-6 });
  const y = gn.forward(conv.forward(x));
  assert.deepEqual(g.params().map((p) => [p.name, [...p.shape]]), [['conv_in.weight', [6, 4, 3, 3]], ['conv_in.bias', [6]], ['norm.weight', [6]], ['norm.bias', [6]]]);
  const { store, ref } = randomParams(g);
  const xd = R.randn(R.rng(5), 144);
  const c = R.conv2d(R.arr(xd, [1, 4, 6, 6]), ref['conv_in.weight']!, ref['conv_in.bias']!, 2, 1, 1);
  assertClose(await run(g, y, xd, store), R.groupNorm(c, ref['norm.weight']!, ref['norm.bias']!, 3, 1e-6));
});

test('Mlp with nn.Sequential names and erf GELU', async () => {
  const g = new Graph();
  const x = g.input('x', [3, 4]);
  const y = new Mlp(g, 'mlp.mlp', 4, { hidden: 8, bias: false, names: ['0', '2'] }).forward(x);
  assert.deepEqual(g.params().map((p) => [p.name, [...p.shape]]), [['mlp.mlp.0.weight', [8, 4]], ['mlp.mlp.2.weight', [4, 8]]]);
  const { store, ref } = randomParams(g);
  const xd = R.randn(R.rng(6), 12);
  const h = R.unary(R.matmul(R.arr(xd, [3, 4]), R.transpose(ref['mlp.mlp.0.weight']!, [1, 0])), R.gelu);
  assertClose(await run(g, y, xd, store), R.matmul(h, R.transpose(ref['mlp.mlp.2.weight']!, [1, 0])));
});

test('SelfAttention (fused qkv, chunked) equals the reference', async () => {
  const [B, L, C, H] = [2, 11, 8, 2];
  const g = new Graph();
  const x = g.input('x', [B, L, C]);
  const y = new SelfAttention(g, 'attn', C, H, { chunk: 4 }).forward(x);
  assert.deepEqual(g.params().map((p) => p.name), ['attn.to_qkv.weight', 'attn.fc.weight']);
  const { store, ref } = randomParams(g);
  const xd = R.randn(R.rng(7), B * L * C);
  const qkv = R.matmul(R.arr(xd, [B, L, C]), R.transpose(ref['attn.to_qkv.weight']!, [1, 0]));
  const heads = (i: number) => R.transpose({ ...R.slice(qkv, [i * C], [(i + 1) * C], [2]), shape: [B, L, H, C / H] }, [0, 2, 1, 3]);
  const o = R.attention(heads(0), heads(1), heads(2), 1 / Math.sqrt(C / H));
  const merged = { ...R.transpose(o, [0, 2, 1, 3]), shape: [B, L, C] };
  assertClose(await run(g, y, xd, store), R.matmul(merged, R.transpose(ref['attn.fc.weight']!, [1, 0])));
});
