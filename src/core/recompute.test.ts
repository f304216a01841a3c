// RecomputedBlock (segments cut at attention, flash attention backward) against autodiff over the whole block.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as C from './index.ts';
import { RecomputedBlock } from './recompute.ts';
import { randn, rng } from './testing/reference.ts';
import { LayerNorm, Linear, Mlp } from '../nn/index.ts';

function relErr(a: Float32Array, b: Float32Array): number {
  let worst = 0,
    scale = 1e-12;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst / scale;
}

/** A pre-LN transformer block, then a second attention of the result over a context input (two cuts). */
function buildBlock(fused: boolean, L: number, M: number, d: number, heads: number) {
  const g = new C.Graph();
  const x = g.input('x', [1, L, d]),
    ctx = g.input('ctx', [1, M, d]);
  const attn = (name: string, a: C.Tensor, b: C.Tensor) => {
    const q = new Linear(g, `${name}.q`, d, d, { bias: false }).forward(a);
    const kv = new Linear(g, `${name}.kv`, d, 2 * d, { bias: true }).forward(b);
    const [k, v] = C.split(kv, 2, -1) as [C.Tensor, C.Tensor];
    return new Linear(g, `${name}.out`, d, d).forward(
      C.multiHeadAttention(q, k, v, heads, fused ? { fused: true } : {}),
    );
  };
  const n1 = new LayerNorm(g, 'n1', d).forward(x);
  const h = C.add(x, attn('self', n1, n1));
  const h2 = C.add(h, attn('cross', new LayerNorm(g, 'n2', d).forward(h), ctx));
  const y = C.add(
    h2,
    new Mlp(g, 'mlp', d, { hidden: 2 * d, act: 'gelu', bias: true }).forward(new LayerNorm(g, 'n3', d).forward(h2)),
  );
  return { g, x, ctx, y, side: C.mul(h, 0.5) };
}

/**
 * The fused block at (L tokens, M context tokens, width d), random parameters and inputs (x [L, d], ctx [M, d]) from
 * one seed, random cotangents of its two outputs, and a maker of recomputed blocks over it.
 */
function setup(L: number, M: number, d: number, heads: number, seed: number) {
  const b = buildBlock(true, L, M, d, heads);
  const r = rng(seed);
  const params: C.ParamStore = new Map(b.g.params().map((p) => [p.name, randn(r, C.sizeOf(p.shape), 0.4)]));
  const feeds = { x: randn(r, L * d), ctx: randn(r, M * d) };
  const cot = { y: randn(r, L * d), side: randn(r, L * d) };
  const recomputed = (opts: Omit<C.RecomputedBlockOptions, 'params'>) =>
    RecomputedBlock.create({ inputs: { x: b.x, ctx: b.ctx }, outputs: { y: b.y, side: b.side } }, { params, ...opts });
  return { params, feeds, cot, recomputed };
}

test('recomputed block (two attention cuts, flash backward) = autodiff of the whole block', async () => {
  const [L, M, d, heads] = [19, 7, 16, 4];
  const { params, feeds, cot, recomputed } = setup(L, M, d, heads, 3);
  const ref = buildBlock(false, L, M, d, heads);
  const wrt = [ref.x, ref.ctx, ...ref.g.paramTensors()];
  const grads = C.vjp([ref.y, ref.side], [ref.g.input('gy', ref.y.shape), ref.g.input('gs', ref.side.shape)], wrt);
  const outs: Record<string, C.Tensor> = { y: ref.y };
  wrt.forEach((t, i) => {
    outs[`g${i}`] = grads[i]!;
  });
  const want = await C.evaluate(outs, { ...feeds, gy: cot.y, gs: cot.side }, { params });
  const block = await recomputed({ chunk: 8, threads: 1 });
  try {
    const fwd = await block.forward(feeds);
    assert.ok(relErr(fwd.y!, want.y!.data as Float32Array) < 1e-5, 'forward');
    for (let rep = 0; rep < 2; rep++) {
      const got = await block.backward(feeds, cot);
      assert.ok(relErr(got.inputs.x!, want.g0!.data as Float32Array) < 2e-5, 'dx');
      assert.ok(relErr(got.inputs.ctx!, want.g1!.data as Float32Array) < 2e-5, 'dctx');
      ref.g.params().forEach((p, i) => {
        const e = relErr(got.params.get(p.name)!, want[`g${i + 2}`]!.data as Float32Array);
        assert.ok(e < 2e-5, `${p.name}: relative error ${e}`);
      });
    }
  } finally {
    await block.release();
  }
});

test('recomputed block: only the inputs asked for get cotangents; a missing output cotangent is zero', async () => {
  const L = 9;
  const { feeds, cot, recomputed } = setup(L, 5, 8, 2, 5);
  const gy = cot.y;
  const block = await recomputed({ inputGrads: ['x'], threads: 1 });
  const ref = await recomputed({ threads: 1 });
  try {
    const got = await block.backward(feeds, { y: gy });
    assert.deepEqual(Object.keys(got.inputs), ['x']);
    const full = await ref.backward(feeds, { y: gy, side: new Float32Array(gy.length) });
    assert.ok(relErr(got.inputs.x!, full.inputs.x!) < 1e-6);
    await assert.rejects(block.backward({ x: feeds.x }, { y: gy }), /missing input "ctx"/);
  } finally {
    await block.release();
    await ref.release();
  }
});

test('forwardSaving with residuals: the backward runs no forward and matches a recomputing one', async () => {
  const { feeds, cot, recomputed } = setup(19, 7, 16, 4, 5);
  const block = await recomputed({ chunk: 8, threads: 1 });
  try {
    const cutsOnly = await block.forwardSaving(feeds);
    const { outputs, saved } = await block.forwardSaving(feeds, { residuals: true });
    const plain = await block.forward(feeds);
    assert.ok(relErr(outputs.y!, plain.y!) < 1e-5 && relErr(outputs.side!, plain.side!) < 1e-5, 'outputs');
    assert.ok(saved.bytes > cutsOnly.saved.bytes, `${saved.bytes} bytes kept vs ${cutsOnly.saved.bytes} at the cuts`);
    const want = await block.backward(feeds, cot);
    const wantParams = new Map([...want.params].map(([k, v]) => [k, Float32Array.from(v)]));
    const got = await block.backward(feeds, cot, { saved });
    assert.ok(relErr(got.inputs.x!, want.inputs.x!) < 1e-6, 'dx');
    assert.ok(relErr(got.inputs.ctx!, want.inputs.ctx!) < 1e-6, 'dctx');
    for (const [k, v] of wantParams) assert.ok(relErr(got.params.get(k)!, v) < 1e-6, k);
  } finally {
    await block.release();
  }
});

test('forwardSaving keeps the cut values: its backward = a recomputing one bit for bit; inputs checked', async () => {
  const { feeds, cot, recomputed } = setup(19, 7, 16, 4, 5);
  const block = await recomputed({ chunk: 8, threads: 1 }),
    other = await recomputed({ chunk: 8, threads: 1 });
  try {
    const plain = await block.forward(feeds);
    const { outputs, saved } = await block.forwardSaving(feeds);
    assert.ok(relErr(outputs.y!, plain.y!) < 1e-5 && relErr(outputs.side!, plain.side!) < 1e-5, 'outputs');
    assert.ok(saved.bytes >= 4 * feeds.x.length, `${saved.bytes} bytes kept`);
    const want = await block.backward(feeds, cot);
    const wantParams = new Map([...want.params].map(([k, v]) => [k, Float32Array.from(v)]));
    const got = await block.backward(feeds, cot, { saved });
    assert.deepEqual([...got.inputs.x!], [...want.inputs.x!]);
    assert.deepEqual([...got.inputs.ctx!], [...want.inputs.ctx!]);
    for (const [k, v] of wantParams) assert.deepEqual([...got.params.get(k)!], [...v], k);
    await assert.rejects(other.backward(feeds, cot, { saved }), /another block/);
    await assert.rejects(block.backward({ ...feeds, x: Float32Array.from(feeds.x) }, cot, { saved }), /not the one/);
  } finally {
    await block.release();
    await other.release();
  }
});
