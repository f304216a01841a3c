import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseUNetConfig, readComponentConfig } from '../../diffusion/config.ts';
import { paramSpecs } from '../../diffusion/params.ts';
import { GOLDEN } from '../../diffusion/testing/golden.ts';
import { declareUNetParams } from '../../diffusion/unet-params.ts';
import { loadWeights } from '../../diffusion/weights.ts';
import { createRng } from '../../synth/rng.ts';
import { UNetGrad, type UNetFeeds } from './unet-grad.ts';

const dir = join(GOLDEN, 'pipeline-tiny/pipeckpts');

async function setup() {
  const config = readComponentConfig(dir, 'unet', parseUNetConfig);
  const store = await loadWeights(
    join(dir, 'unet'),
    paramSpecs((d) => declareUNetParams(d, config)),
    'unet',
  );
  const params = new Map([...store].map(([k, v]) => [k, v as Float32Array]));
  const r = createRng(7);
  const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => (r.next() * 2 - 1) * s);
  const N = 6,
    h = config.sampleSize,
    tokens = 5;
  const feeds: UNetFeeds = {
    sample: rand(N * 8 * h * h),
    timestepEmbedding: rand(N * config.blockOutChannels[0]!),
    classLabels: rand(N * config.classEmbedInputDim),
    context: rand(N * tokens * config.crossAttentionDim),
  };
  return { config, params, feeds, target: rand(N * 4 * h * h), weights: [1, 0.5, 2, 1, 0.25, 1], tokens };
}

test('UNet loss gradients: the recomputed network equals the whole graph; finite differences agree', async () => {
  const { config, params, feeds, target, weights, tokens } = await setup();
  const whole = await UNetGrad.create(config, params, { batch: 6, tokens, recompute: false, threads: 2 });
  const recomputed = await UNetGrad.create(config, params, {
    batch: 6,
    tokens,
    recompute: true,
    threads: 2,
    chunk: 16,
  });
  try {
    const a = await whole.lossAndGrads(feeds, target, weights);
    const aGrads = new Map([...a.grads].map(([k, v]) => [k, Float32Array.from(v)]));
    const b = await recomputed.lossAndGrads(feeds, target, weights);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-5 * Math.abs(a.loss), `loss ${a.loss} vs ${b.loss}`);
    assert.equal(aGrads.size, params.size, 'every parameter gets a gradient');
    let worst = 0;
    for (const [k, ga] of aGrads) {
      const gb = b.grads.get(k);
      assert.ok(gb, `recomputed lacks ${k}`);
      let num = 0,
        den = 0;
      for (let i = 0; i < ga.length; i++) {
        num += (ga[i]! - gb[i]!) ** 2;
        den += ga[i]! ** 2;
      }
      worst = Math.max(worst, Math.sqrt(num / Math.max(den, 1e-30)));
    }
    assert.ok(worst < 2e-4, `worst relative gradient difference ${worst}`);

    // Central differences on the largest-gradient entry of a few tensors across the network.
    const names = [
      'conv_in.weight',
      'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_k.weight',
      'class_embedding.linear_1.weight',
      'up_blocks.3.resnets.2.conv2.weight',
      'conv_out.bias',
    ];
    for (const name of names) {
      const p = params.get(name)!,
        g = aGrads.get(name)!;
      let j = 0;
      for (let i = 0; i < g.length; i++) if (Math.abs(g[i]!) > Math.abs(g[j]!)) j = i;
      // A step large enough that the loss change stands well above float32 rounding of the loss.
      const x = p[j]!,
        eps = Math.min(0.05, Math.max(1e-2 * Math.abs(x), (2e-4 * a.loss) / Math.abs(g[j]!)));
      p[j] = x + eps;
      const up = (await whole.lossAndGrads(feeds, target, weights)).loss;
      p[j] = x - eps;
      const down = (await whole.lossAndGrads(feeds, target, weights)).loss;
      p[j] = x;
      const fd = (up - down) / (2 * eps);
      assert.ok(Math.abs(fd - g[j]!) < 2e-2 * Math.abs(g[j]!) + 1e-5, `${name}[${j}]: analytic ${g[j]} vs fd ${fd}`);
    }
  } finally {
    await whole.release();
    await recomputed.release();
  }
});

test("gradients added into a trainer's accumulators (× scale) equal the returned ones, both ways; loss alone", async () => {
  const { config, params, feeds, target, weights, tokens } = await setup();
  for (const recompute of [false, true]) {
    const net = await UNetGrad.create(config, params, { batch: 6, tokens, recompute, threads: 2, chunk: 16 });
    try {
      const plain = await net.lossAndGrads(feeds, target, weights);
      const want = new Map([...plain.grads].map(([k, v]) => [k, Float32Array.from(v)]));
      // Accumulators in shared memory (as the trainer's are with optimizer threads), holding an earlier pass.
      const before = (k: string, i: number) => ((k.length + i) % 7) * 0.125;
      const addTo = new Map(
        [...params].map(([k, p]) => {
          const a = new Float32Array(new SharedArrayBuffer(4 * p.length));
          for (let i = 0; i < a.length; i++) a[i] = before(k, i);
          return [k, a] as const;
        }),
      );
      const r = await net.lossAndGrads(feeds, target, weights, { addTo, scale: 0.5 });
      assert.equal(r.grads, addTo);
      assert.equal(r.loss, plain.loss);
      for (const [k, g] of want) {
        const a = addTo.get(k)!;
        for (let i = 0; i < g.length; i++) {
          const expect = Math.fround(before(k, i) + 0.5 * g[i]!);
          assert.ok(Math.abs(a[i]! - expect) <= 1e-6 * (1 + Math.abs(expect)), `${k}[${i}] (recompute ${recompute})`);
        }
      }
      assert.ok(Math.abs((await net.loss(feeds, target, weights)) - plain.loss) <= 1e-6 * plain.loss, 'loss alone');
      await assert.rejects(
        net.lossAndGrads(feeds, target, weights, { addTo: new Map(), scale: 1 }),
        /no gradient accumulator/,
      );
    } finally {
      await net.release();
    }
  }
});
