import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomGslrmWeights } from '../../lrm/weights.ts';
import { GslrmGradNetwork } from './network-grad.ts';
import { tinyConfig } from './testing/tiny.ts';

test('GS-LRM block-recomputed backward: parameter gradients of every stage match central differences', async () => {
  const cfg = tinyConfig({ size: 16, layers: 2, d: 16, nIn: 2 });
  const params = randomGslrmWeights(cfg.model, 3);
  const net = await GslrmGradNetwork.create(cfg.model, params, { views: 2, threads: 1, chunk: 8 });
  try {
    const patches = new Float32Array(2 * 4 * 576).map((_, i) => Math.sin(i * 0.37));
    const f0 = await net.forward(patches);
    const c = new Float32Array(f0.raw.length).map((_, i) => Math.cos(i * 0.11));
    const L = async () => {
      const f = await net.forward(patches);
      let s = 0;
      for (let i = 0; i < c.length; i++) s += f.raw[i]! * c[i]!;
      return s;
    };
    const grads = new Map<string, Float32Array>();
    await net.backward(patches, f0, c, grads, new Set());
    const checks: Array<[string, number]> = [
      ['patch_embedder.1.weight', 37],
      ['gaussian_position_embeddings', 5],
      ['input_layer_norm.weight', 3],
      ['transformer_layers.0.attn.to_qkv.weight', 101],
      ['transformer_layers.0.mlp.mlp.2.weight', 9],
      ['transformer_layers.1.attn.fc.weight', 17],
      ['transformer_layers.1.norm1.weight', 4],
      ['gaussian_upsampler.linear.weight', 20],
      ['pixel_gaussian_decoder.1.weight', 300],
    ];
    for (const [name, idx] of checks) {
      const w = params.get(name)!;
      const o = w[idx]!;
      const e = 3e-3;
      w[idx] = o + e;
      const a = await L();
      w[idx] = o - e;
      const b = await L();
      w[idx] = o;
      const fd = (a - b) / (2 * e),
        g = grads.get(name)![idx]!;
      assert.ok(Math.abs(fd - g) <= 0.01 * Math.abs(fd) + 2e-3, `${name}[${idx}]: analytic ${g}, FD ${fd}`);
    }
    // Frozen layers below the lowest trainable one are skipped, and frozen names get no accumulator.
    const g2 = new Map<string, Float32Array>();
    const frozen = new Set(
      [...params.keys()].filter(
        (k) => !k.startsWith('transformer_layers.1.') && !k.startsWith('pixel') && !k.startsWith('gaussian_up'),
      ),
    );
    await net.backward(patches, f0, c, g2, frozen);
    assert.ok(!g2.has('transformer_layers.0.norm1.weight') && !g2.has('patch_embedder.1.weight'));
    assert.deepEqual(g2.get('transformer_layers.1.attn.fc.weight'), grads.get('transformer_layers.1.attn.fc.weight'));
  } finally {
    await net.release();
  }
});

test('GS-LRM backward, cut values kept: = recomputing, bit for bit; all activations kept: to rounding', async () => {
  const cfg = tinyConfig({ size: 16, layers: 2, d: 16, nIn: 2 });
  const params = randomGslrmWeights(cfg.model, 4);
  const opts = { views: 2, threads: 1, chunk: 8 };
  const plain = await GslrmGradNetwork.create(cfg.model, params, opts);
  const keeping = await GslrmGradNetwork.create(cfg.model, params, { ...opts, keepActivations: 'cuts' });
  const keepingAll = await GslrmGradNetwork.create(cfg.model, params, { ...opts, keepActivations: 'all' });
  try {
    const patches = new Float32Array(2 * 4 * 576).map((_, i) => Math.cos(i * 0.23));
    const fa = await plain.forward(patches),
      fb = await keeping.forward(patches);
    assert.equal(fb.cuts.filter(Boolean).length, 2, 'one kept set per layer');
    for (let i = 0; i < fa.raw.length; i++) assert.ok(Math.abs(fa.raw[i]! - fb.raw[i]!) <= 1e-5, `raw[${i}]`);
    const c = new Float32Array(fa.raw.length).map((_, i) => Math.sin(i * 0.05));
    const ga = new Map<string, Float32Array>(),
      gb = new Map<string, Float32Array>();
    // Both from the keeping forward's saved inputs, so the only difference is where the cut values come from.
    await plain.backward(patches, { ...fb, cuts: [] }, c, ga, new Set());
    await keeping.backward(patches, fb, c, gb, new Set());
    assert.deepEqual(fb.cuts, [undefined, undefined], 'released as the backward passes');
    for (const [k, v] of ga) assert.deepEqual([...gb.get(k)!], [...v], k);
    // Everything the backward reads kept too: no forward work in the backward, the same gradients to rounding.
    const fc = await keepingAll.forward(patches);
    const gc = new Map<string, Float32Array>();
    await keepingAll.backward(patches, fc, c, gc, new Set());
    for (const [k, v] of ga) {
      const got = gc.get(k)!;
      let err = 0,
        ref = 0;
      for (let i = 0; i < v.length; i++) {
        err = Math.max(err, Math.abs(got[i]! - v[i]!));
        ref = Math.max(ref, Math.abs(v[i]!));
      }
      assert.ok(err <= 1e-5 * ref, `${k}: ${err} vs max ${ref}`);
    }
  } finally {
    await plain.release();
    await keeping.release();
    await keepingAll.release();
  }
});
