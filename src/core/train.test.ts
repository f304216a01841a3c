// Optimizers, and end-to-end training through one forward+backward ONNX graph per step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as C from './index.ts';
import { Conv2d, GroupNorm, LayerNorm, Linear, Mlp, SelfAttention } from '../nn/index.ts';
import { randn, rng } from './testing/reference.ts';

test('AdamW: first step moves each weight by lr·sign(g) after decoupled decay; second step matches the formula', () => {
  const p = Float32Array.of(1, -2, 0.5);
  const opt = new C.AdamW(new Map([['p', p]]), { lr: 0.1, weightDecay: 0.5, eps: 0 });
  opt.step(new Map([['p', Float32Array.of(3, -0.01, 2)]]));
  // p·(1 − lr·wd) − lr·m̂/√v̂ with m̂ = g, √v̂ = |g| on step 1.
  assert.deepEqual([...p].map((x) => +x.toFixed(6)), [1 * 0.95 - 0.1, -2 * 0.95 + 0.1, 0.5 * 0.95 - 0.1].map((x) => +x.toFixed(6)));
  const q = Float32Array.of(1);
  const o2 = new C.AdamW(new Map([['q', q]]), { lr: 0.1, betas: [0.9, 0.99], weightDecay: 0, eps: 0 });
  o2.step(new Map([['q', Float32Array.of(1)]]));
  o2.step(new Map([['q', Float32Array.of(-1)]]));
  // step 2: m = 0.9·0.1 − 0.1 = −0.01, v = 0.99·0.01 + 0.01 = 0.0199; m̂ = −0.01/0.19, v̂ = 0.0199/0.0199 = 1.
  assert.ok(Math.abs(q[0]! - (0.9 + 0.1 * (0.01 / 0.19))) < 1e-6, `q = ${q[0]}`);
});

test('clipGradNorm scales to the max norm and reports the norm before clipping', () => {
  const a = Float32Array.of(3, 0), b = Float32Array.of(0, 4);
  assert.ok(Math.abs(C.clipGradNorm([a, b], 1) - 5) < 1e-6);
  assert.ok(Math.abs(Math.hypot(...a, ...b) - 1) < 1e-5);
  const c = Float32Array.of(0.1);
  C.clipGradNorm([c], 1);
  assert.equal(c[0], Float32Array.of(0.1)[0]);
});

/** Fills every parameter with N(0, 1/fan_in) (norm weights 1, biases 0) as fp32 master weights. */
function init(g: C.Graph, seed: number): C.ParamStore {
  const r = rng(seed);
  const store: C.ParamStore = new Map();
  for (const p of g.params()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const fanIn = p.shape.length > 1 ? n / p.shape[0]! : 0;
    store.set(p.name, p.name.endsWith('bias') ? new Float32Array(n)
      : p.shape.length === 1 ? new Float32Array(n).fill(1) : randn(r, n, 1 / Math.sqrt(fanIn)));
  }
  return store;
}

async function train(loss: C.Tensor, store: C.ParamStore, feeds: Record<string, Float32Array>, steps: number, lr: number): Promise<number[]> {
  const session = await C.Session.create(C.lossAndParamGrads(loss), { params: store, threads: 1 });
  const opt = new C.AdamW(store, { lr, weightDecay: 0 });
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const out = await session.run(feeds);
    losses.push((out.loss!.data as Float32Array)[0]!);
    const grads = C.gradsFromOutputs(out);
    C.clipGradNorm(grads.values(), 10);
    opt.step(grads); // updates the buffers the session reads in place
  }
  await session.release();
  return losses;
}

test('a small MLP trains with AdamW on a toy regression: loss drops ≥ 10×', async () => {
  const r = rng(21);
  const n = 64;
  const x = randn(r, n * 2);
  const y = new Float32Array(n).map((_, i) => Math.sin(2 * x[2 * i]!) + 0.5 * x[2 * i + 1]! ** 2);
  const g = new C.Graph();
  const xt = g.input('x', [n, 2]), yt = g.input('y', [n, 1]);
  const pred = new Linear(g, 'head', 32, 1).forward(new Mlp(g, 'mlp', 2, { hidden: 32, out: 32, act: 'gelu' }).forward(xt));
  const loss = C.reduceMean(C.square(C.sub(pred, yt)), [0, 1]);
  const losses = await train(loss, init(g, 1), { x, y }, 300, 1e-2);
  const first = losses[0]!, last = losses.at(-1)!;
  assert.ok(last * 10 <= first, `MLP loss ${first} → ${last}`);
});

test('a small conv net (conv, GroupNorm, SiLU, stride 2, ×2 upsample) trains to a teacher: loss drops ≥ 10×', async () => {
  const build = (g: C.Graph, x: C.Tensor): C.Tensor => {
    let h = new Conv2d(g, 'conv_in', 2, 8, 3, { padding: 1 }).forward(x);
    h = C.silu(new GroupNorm(g, 'norm', 2, 8).forward(h));
    h = new Conv2d(g, 'down', 8, 8, 3, { padding: 1, stride: 2 }).forward(h);
    h = C.upsampleNearest2x(C.silu(h));
    return new Conv2d(g, 'conv_out', 8, 1, 3, { padding: 1 }).forward(h);
  };
  const r = rng(5);
  const x = randn(r, 8 * 2 * 8 * 8);
  // The target is a fixed random network of the same architecture.
  const tg = new C.Graph();
  const target = (await C.evaluate({ y: build(tg, tg.input('x', [8, 2, 8, 8])) }, { x }, { params: init(tg, 99) })).y!.data as Float32Array;
  const g = new C.Graph();
  const xt = g.input('x', [8, 2, 8, 8]), yt = g.input('y', [8, 1, 8, 8]);
  const loss = C.reduceMean(C.square(C.sub(build(g, xt), yt)), [0, 1, 2, 3]);
  const losses = await train(loss, init(g, 7), { x, y: target }, 300, 1e-2);
  const first = losses[0]!, last = losses.at(-1)!;
  assert.ok(last * 10 <= first, `conv net loss ${first} → ${last}`);
});

test('a tiny pre-LN transformer block (fused attention, recomputed backward) trains to a teacher: loss drops ≥ 10×', async () => {
  const [B, L, D] = [2, 8, 16];
  const build = (g: C.Graph, x: C.Tensor): C.Tensor => {
    const h = C.add(x, new SelfAttention(g, 'attn', D, 2, { fused: true, chunk: 3 }).forward(new LayerNorm(g, 'norm1', D, { bias: false }).forward(x)));
    return C.add(h, new Mlp(g, 'mlp', D, { hidden: 32, bias: false }).forward(new LayerNorm(g, 'norm2', D, { bias: false }).forward(h)));
  };
  const r = rng(8);
  const x = randn(r, B * L * D);
  const tg = new C.Graph();
  const target = (await C.evaluate({ y: build(tg, tg.input('x', [B, L, D])) }, { x }, { params: init(tg, 42) })).y!.data as Float32Array;
  const g = new C.Graph();
  const xt = g.input('x', [B, L, D]), yt = g.input('y', [B, L, D]);
  const loss = C.reduceMean(C.square(C.sub(build(g, xt), yt)), [0, 1, 2]);
  const losses = await train(loss, init(g, 3), { x, y: target }, 300, 1e-2);
  const first = losses[0]!, last = losses.at(-1)!;
  assert.ok(last * 10 <= first, `transformer loss ${first} → ${last}`);
});

test('parameters in shared memory (optimizer worker threads): one private copy, refreshed after sharedParamsChanged()', async () => {
  const g = new C.Graph();
  const x = g.input('x', [2]);
  const w = g.param('w', [2]);
  const shared = new Float32Array(new SharedArrayBuffer(8));
  shared.set([1, 2]);
  const s = await C.Session.create({ y: C.mul(x, w) }, { params: new Map([['w', shared]]) });
  try {
    assert.deepEqual([...(await s.run({ x: Float32Array.of(3, 4) })).y!.data], [3, 8]);
    shared[1] = -1;
    // Writers announce their writes (the optimizer does after each update); until then the copy stands.
    assert.deepEqual([...(await s.run({ x: Float32Array.of(3, 4) })).y!.data], [3, 8]);
    C.sharedParamsChanged();
    assert.deepEqual([...(await s.run({ x: Float32Array.of(3, 4) })).y!.data], [3, -4]);
    const into = new Float32Array(new SharedArrayBuffer(8));
    await assert.rejects(s.run({ x: Float32Array.of(3, 4) }, { y: into }), /output buffer "y" is in shared memory/);
  } finally {
    await s.release();
  }
});

test('swapping shared-memory parameters between sessions (one block graph, one layer at a time) reads the right ones', async () => {
  const g = new C.Graph();
  const x = g.input('x', [2]);
  const w = g.param('w', [2]);
  const layer = (a: number, b: number) => {
    const s = new Float32Array(new SharedArrayBuffer(8));
    s.set([a, b]);
    return s;
  };
  const [l0, l1, l2] = [layer(1, 2), layer(10, 20), layer(100, 200)];
  const fwd = await C.Session.create({ y: C.mul(x, w) }, { params: new Map([['w', l0]]) });
  const bwd = await C.Session.create({ y: C.mul(x, w) }, { params: new Map([['w', l0]]) });
  const y = async (s: C.Session) => [...(await s.run({ x: Float32Array.of(1, 1) })).y!.data];
  try {
    fwd.setParam('w', l1); // hands l0's copy to l1 while bwd still reads l0
    assert.deepEqual(await y(fwd), [10, 20]);
    assert.deepEqual(await y(bwd), [1, 2]);
    bwd.setParam('w', l1);
    fwd.setParam('w', l2);
    assert.deepEqual(await y(bwd), [10, 20]);
    assert.deepEqual(await y(fwd), [100, 200]);
    l2[0] = -1;
    C.sharedParamsChanged();
    fwd.setParam('w', l0);
    fwd.setParam('w', l2);
    assert.deepEqual(await y(fwd), [-1, 200]);
    assert.deepEqual(await y(bwd), [10, 20]);
  } finally {
    await fwd.release();
    await bwd.release();
  }
});
