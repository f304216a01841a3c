import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { alphasCumprod, betas } from '../../diffusion/noise-schedule.ts';
import { Ema } from '../optim/ema.ts';
import { dropAsAWhole, minSnrWeight, piecewiseConstant, snr, weightedMse } from './numerics.ts';

// Goldens: scripts/goldens/mvdiffusion-train.py (Debian torch 1.13 running the reference's formulas).
const golden = JSON.parse(readFileSync(new URL('./testdata/numerics.json', import.meta.url), 'utf8')) as {
  snr: {
    timesteps: number[];
    alphas_cumprod: number[];
    snr: number[];
    weight_reference: number[];
    weight_v_corrected: number[];
  };
  loss: { pred: number[]; target: number[]; views: number; timesteps: number[]; loss: number };
  dropout: { rate: number; p: number[]; latent_keep: number[]; clip_keep: number[] };
  ema: { initial: number[][]; updates: number[][][]; shadow: number[][][]; decay: number[] };
  piecewise: Array<{ rules: string; steps: number[]; multiplier: number[] }>;
};
const ac = alphasCumprod(
  betas({ numTrainTimesteps: 1000, betaStart: 0.00085, betaEnd: 0.012, betaSchedule: 'scaled_linear' }),
);

test('SNR and min-SNR weights (γ = 5) match the reference bit for bit, and the v-corrected form its formula', () => {
  const g = golden.snr;
  // torch's float32 cumprod groups its products differently: ᾱ agrees to a few ulp; the formulas on torch's ᾱ exactly.
  const torchAc = new Float32Array(1000);
  g.timesteps.forEach((t, i) => {
    assert.ok(Math.abs(ac[t]! - g.alphas_cumprod[i]!) <= 1e-6 * g.alphas_cumprod[i]!, `ᾱ_${t}`);
    torchAc[t] = g.alphas_cumprod[i]!;
  });
  g.timesteps.forEach((t, i) => {
    assert.equal(snr(torchAc, t), g.snr[i], `SNR_${t}`);
    assert.equal(minSnrWeight(torchAc, t, 5, 'reference'), g.weight_reference[i], `weight_${t}`);
    assert.equal(minSnrWeight(torchAc, t, 5, 'v-corrected'), g.weight_v_corrected[i], `v weight_${t}`);
  });
  assert.equal(minSnrWeight(ac, 500, null, 'reference'), 1);
  // High-noise timesteps (SNR < γ) keep weight 1 in the reference form; low-noise ones are down-weighted.
  assert.equal(minSnrWeight(ac, 999, 5, 'reference'), 1);
  assert.ok(minSnrWeight(ac, 0, 5, 'reference') < 0.01);
});

test('weighted MSE equals the reference loss; its gradient matches finite differences', () => {
  const g = golden.loss;
  const weights = g.timesteps.flatMap((t) => Array<number>(g.views).fill(minSnrWeight(ac, t, 5, 'reference')));
  const pred = Float32Array.from(g.pred),
    target = Float32Array.from(g.target);
  const { loss, grad } = weightedMse(pred, target, weights);
  assert.ok(Math.abs(loss - g.loss) <= 1e-6 * Math.abs(g.loss), `${loss} vs ${g.loss}`);
  for (const j of [0, 37, 150, 599]) {
    const h = 1e-3;
    const p2 = Float64Array.from(pred);
    const at = (x: number) => {
      p2[j] = x;
      return weightedMse(Float32Array.from(p2), target, weights).loss;
    };
    const fd = (at(pred[j]! + h) - at(pred[j]! - h)) / (2 * h);
    assert.ok(Math.abs(fd - grad[j]!) < 1e-4 * Math.max(1, Math.abs(fd)), `∂/∂pred[${j}]: ${grad[j]} vs ${fd}`);
  }
});

test('drop as a whole: the three cases at the reference boundaries (5 % / 5 % / 5 % / 85 %)', () => {
  const g = golden.dropout;
  g.p.forEach((p, i) => {
    const k = dropAsAWhole(p, g.rate);
    assert.equal(k.latent ? 1 : 0, g.latent_keep[i], `latent at p = ${p}`);
    assert.equal(k.clip ? 1 : 0, g.clip_keep[i], `clip at p = ${p}`);
  });
  const counts = { clipOnly: 0, both: 0, latentOnly: 0, none: 0 };
  const n = 100_000;
  for (let i = 0; i < n; i++) {
    const k = dropAsAWhole((i + 0.5) / n, 0.05);
    if (!k.clip && k.latent) counts.clipOnly++;
    else if (!k.clip && !k.latent) counts.both++;
    else if (k.clip && !k.latent) counts.latentOnly++;
    else counts.none++;
  }
  assert.deepEqual(counts, { clipOnly: 5000, both: 5000, latentOnly: 5000, none: 85000 });
});

test("EMA follows diffusers' EMAModel bit for bit over 14 updates (warm-up decay, first update copies)", () => {
  const g = golden.ema;
  const params = new Map(g.initial.map((v, i) => [`p${i}`, Float32Array.from(v)]));
  const ema = Ema.of(params, params.keys());
  g.updates.forEach((upd, k) => {
    upd.forEach((u, i) => {
      const p = params.get(`p${i}`)!;
      for (let j = 0; j < p.length; j++) p[j] = p[j]! + u[j]!;
    });
    ema.step(params);
    assert.equal(ema.decayAt(k + 1), g.decay[k]);
    g.shadow[k]!.forEach((s, i) => assert.deepEqual([...ema.shadow.get(`p${i}`)!], s, `update ${k + 1}, tensor ${i}`));
  });
  assert.equal(ema.optimizationStep, 14);
  assert.equal(ema.decayAt(10 ** 7), 0.9999);
});

test('piecewise-constant LR as diffusers parses step_rules (lr_warmup_steps has no effect)', () => {
  for (const g of golden.piecewise) {
    const f = piecewiseConstant(g.rules);
    assert.deepEqual(g.steps.map(f), g.multiplier, g.rules);
  }
  assert.throws(() => piecewiseConstant('1:abc,0.5'), /multiplier:step/);
});

test('CLIP input resize = torch bicubic with antialias (down 20→7, up 5→9) within 2e-6', async () => {
  const { resizeBicubicAntialias } = await import('./clip-input.ts');
  const g = (golden as unknown as { resize: Record<string, number[]> }).resize;
  const check = (inp: number[], out: number[], s: number, o: number) => {
    const r = resizeBicubicAntialias(Float32Array.from(inp), 3, s, s, o, o);
    const worst = Math.max(...out.map((v, i) => Math.abs(v - r[i]!)));
    assert.ok(worst < 2e-6, `${s}→${o}: worst ${worst}`);
  };
  check(g.down_in!, g.down_out!, 20, 7);
  check(g.up_in!, g.up_out!, 5, 9);
});
