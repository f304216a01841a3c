import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomGslrmWeights } from '../../lrm/weights.ts';
import { GslrmTrainStep } from './step.ts';
import { syntheticSample, tinyConfig } from './testing/tiny.ts';

/**
 * One finite-difference check across the whole chain: image → posed patches → embedding → transformer block →
 * heads → Gaussian decoding (hard pixel alignment) → rasterizer at 3 target views → L2 loss, w.r.t. parameters
 * of every stage. Central differences in float32 (ORT) with eps 1e-3.
 */
test('GS-LRM train step: gradients match finite differences from the loss back to every stage', async () => {
  const cfg = tinyConfig({ size: 16, layers: 1, d: 16, nIn: 2, nViews: 3 });
  const params = randomGslrmWeights(cfg.model, 3);
  // Larger weights than the official init, so that every stage's gradient is well above float32 noise.
  for (const [k, w] of params)
    if (!k.includes('norm') && !k.endsWith('layernorm.weight') && !k.endsWith('decoder.0.weight'))
      for (let i = 0; i < w.length; i++) w[i] *= 5;
  const step = await GslrmTrainStep.create(cfg, params, { threads: 1 });
  try {
    const sample = syntheticSample(16, [0, 8, 4]);
    const r = await step.run([sample], 0, 1);
    assert.ok(Number.isFinite(r.loss) && r.loss > 0);
    const grads = new Map([...step.grads].map(([k, v]) => [k, Float64Array.from(v)]));
    const lossAt = async () => {
      const out = (await step.run([sample], 0, 1)).loss;
      return out;
    };

    // Directional derivatives along each tensor's own gradient (expected value |∇|). The rasterizer is only piecewise
    // smooth (α < 1/255 skips, 3σ boxes, the 0.99 cap): moving every Gaussian at once crosses some of those edges,
    // which adds noise of a few per cent to any finite difference here; measured spread across eps 1e-4…1e-2 is
    // ≤ 10 % around the analytic value, while a missing factor or term of any stage is ≥ 30 %.
    const names = [
      'patch_embedder.1.weight',
      'gaussian_position_embeddings',
      'input_layer_norm.weight',
      'transformer_layers.0.attn.to_qkv.weight',
      'transformer_layers.0.attn.fc.weight',
      'transformer_layers.0.norm1.weight',
      'transformer_layers.0.mlp.mlp.0.weight',
      'transformer_layers.0.mlp.mlp.2.weight',
      'transformer_layers.0.norm2.weight',
      'gaussian_upsampler.linear.weight',
      'pixel_gaussian_decoder.0.weight',
      'pixel_gaussian_decoder.1.weight',
    ];
    for (const name of names) {
      const w = params.get(name)!;
      const g = grads.get(name)!;
      let norm = 0;
      for (const x of g) norm += x * x;
      norm = Math.sqrt(norm);
      assert.ok(norm > 0, `${name}: zero gradient`);
      const orig = Float32Array.from(w);
      const eps = 1e-4;
      const at = async (t: number) => {
        for (let i = 0; i < w.length; i++) w[i] = orig[i]! + (t * g[i]!) / norm;
        return lossAt();
      };
      const fd = ((await at(eps)) - (await at(-eps))) / (2 * eps);
      w.set(orig);
      assert.ok(Math.abs(fd - norm) <= 0.12 * norm + 2e-4, `${name}: |∇| ${norm}, finite difference along ∇ ${fd}`);
    }
  } finally {
    await step.close();
  }
});

test('GS-LRM train step: the pixel-align term runs (≈ 0 with hard pixel alignment); masked without alpha is refused', async () => {
  const cfg = tinyConfig({ size: 16, layers: 1, d: 16, nIn: 2, nViews: 3 });
  cfg.losses.pixelalign = 0.1;
  const step = await GslrmTrainStep.create(cfg, randomGslrmWeights(cfg.model, 3), { threads: 1 });
  try {
    const r = await step.run([syntheticSample(16, [0, 8, 4])], 0, 1);
    assert.ok(r.metrics.pixelalign! >= 0 && r.metrics.pixelalign! < 1e-5, `pixel-align ${r.metrics.pixelalign}`);
    cfg.losses.maskedPixelalign = true;
    await assert.rejects(step.run([syntheticSample(16, [0, 8, 4])], 0, 1), /masked_pixelalign_loss needs views with alpha/);
  } finally {
    await step.close();
  }
});
