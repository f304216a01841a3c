/**
 * `facelift train vae`: the step's parameter gradients against finite differences; a run that learns (held-out
 * reconstruction better than at the start and than the mean image); a run stopped half-way and resumed ends with
 * the same weights and losses, to the bit, as one that ran through; the exported `vae/` folder loads in the
 * diffusion pipeline's loader.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseVaeConfig } from '../../diffusion/config.ts';
import { JsonFields } from '../../diffusion/json-fields.ts';
import { paramSpecs } from '../../diffusion/params.ts';
import { declareVaeParams } from '../../diffusion/vae-params.ts';
import { loadWeights } from '../../diffusion/weights.ts';
import { synthHeads } from '../gslrm/testing/fixtures.ts';
import { initialParams } from '../init.ts';
import { vaeConfigJson } from './config.ts';
import { trainVae } from './run.ts';
import { VaeTrainStep } from './step.ts';

const TINY = { block_out_channels: [8, 16], layers_per_block: 1, norm_num_groups: 4, sample_size: 16, latent_channels: 4 };

let root = '';
let data = '';
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'vae-train-'));
  data = await synthHeads(join(root, 'heads'), 6, 32, { layout: 'mvdiffusion', valFraction: 0.34, seed: 5 });
});
after(() => rmSync(root, { recursive: true, force: true }));

function config(out: string, passes: number, extra = ''): string {
  const path = join(root, `${out}.yaml`);
  writeFileSync(path, `seed: 3
output_dir: ${join(root, out)}
vae: ${JSON.stringify(TINY)}
data:
  train: ${join(data, 'data_mvdiff_train.txt')}
  val: ${join(data, 'data_mvdiff_val.txt')}
  image_size: 16
  crop: 8
  views_per_sample: 6
  background: three_choices
training:
  batch_size: 1
  grad_accum: 2
  lr: 3.0e-3
  warmup: 4
  max_passes: ${passes}
  kl_weight: 1.0e-4
  mse_weight: 1.0
  grad_clip: 1.0
  checkpoint_every: 1000
  print_every: 2
  validate_every: null
${extra}`);
  return path;
}

test('the VAE step: parameter gradients match finite differences of its loss', async () => {
  const cfg = parseVaeConfig(new JsonFields('tiny', vaeConfigJson(TINY) as never));
  const specs = paramSpecs((d) => declareVaeParams(d, cfg));
  const params = initialParams(specs, 7);
  const shapes = new Map(specs.map((s) => [s.name, s.shape]));
  const step = await VaeTrainStep.create(cfg, params, shapes, { images: 2, size: 16, weights: { kl: 0.1, mse: 1 }, seed: 1, weightDecay: 0 });
  try {
    const images = new Float32Array(2 * 3 * 16 * 16).map((_, i) => 0.5 + 0.4 * Math.sin(i * 0.37));
    const batch = { images, count: 2 };
    for (const [k, v] of params) step.grads.set(k, new Float32Array(v.length));
    await step.run(batch, 5, 1);
    // A random direction over each part's parameters: ⟨∇L, v⟩ against (L(θ+εv) − L(θ−εv)) / 2ε.
    for (const part of ['encoder.', 'quant_conv', 'post_quant_conv', 'decoder.']) {
      let seed = 12345;
      const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
      const dir = new Map([...params].map(([k, v]) => [k, v.map(() => (k.startsWith(part) ? rand() : 0))]));
      let analytic = 0;
      for (const [k, g] of step.grads) g.forEach((x, i) => (analytic += x * dir.get(k)![i]!));
      const eps = 1e-3;
      const shifted = async (sign: number) => {
        const saved = new Map([...params].map(([k, v]) => [k, v.slice()]));
        for (const [k, v] of params) v.forEach((x, i) => (v[i] = x + sign * eps * dir.get(k)![i]!));
        const r = await step.run(batch, 5, 0);
        for (const [k, v] of saved) params.get(k)!.set(v);
        return r.loss;
      };
      const numeric = ((await shifted(1)) - (await shifted(-1))) / (2 * eps);
      assert.ok(Math.abs(analytic - numeric) <= 0.03 * Math.abs(numeric) + 1e-4, `${part}: analytic ${analytic}, numeric ${numeric}`);
    }
  } finally {
    await step.close();
  }
});

test('train vae learns, resumes to the bit after a stop, and exports a vae/ folder the pipeline loads', async () => {
  const straight = await trainVae({ config: config('a', 40), threads: 2, say: () => {} });
  assert.equal(straight.pass, 40);
  assert.ok(straight.exported);
  const rows = (name: string) => readFileSync(join(root, name, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss: number; l1: number });
  const a = rows('a');
  // Learns: the last logged reconstruction error is well below the first.
  assert.ok(a.at(-1)!.l1 < 0.6 * a[0]!.l1, `l1 ${a[0]!.l1} → ${a.at(-1)!.l1}`);

  let passes = 0;
  const first = await trainVae({ config: config('b', 40), threads: 2, say: () => {}, onPass: () => passes++, stop: () => passes >= 18 });
  assert.equal(first.stopped, true);
  assert.equal(first.exported, null);
  const resumed = await trainVae({ config: config('b', 40), threads: 2, say: () => {}, resume: true });
  assert.equal(resumed.pass, 40);
  assert.deepEqual(rows('b').map((r) => r.loss), a.map((r) => r.loss));
  const cfg = parseVaeConfig(JsonFields.fromFile(join(straight.exported!, 'config.json'), 'vae/config.json'));
  const specs = paramSpecs((d) => declareVaeParams(d, cfg));
  const wa = await loadWeights(straight.exported!, specs, 'vae');
  const wb = await loadWeights(resumed.exported!, specs, 'vae');
  for (const s of specs) assert.deepEqual(wb.get(s.name), wa.get(s.name), s.name);
  // The export sets scaling_factor from the latents' spread (the config gives none), as LDM chose SD's 0.18215.
  const sf = (JSON.parse(readFileSync(join(straight.exported!, 'config.json'), 'utf8')) as { scaling_factor: number }).scaling_factor;
  assert.ok(sf > 0 && sf !== 0.18215, `scaling_factor ${sf}`);
  // --export-only writes the same folder again from the newest checkpoint.
  const again = await trainVae({ config: config('a', 40), threads: 2, say: () => {}, exportOnly: true });
  assert.equal(again.exported, straight.exported);
  assert.equal((JSON.parse(readFileSync(join(again.exported!, 'config.json'), 'utf8')) as { scaling_factor: number }).scaling_factor, sf);
});

test('train vae: a config with a wrong key type or size says which', async () => {
  await assert.rejects(trainVae({ config: config('c', 4), sets: ['data.image_size=15'], say: () => {} }), /not a multiple of the VAE's downsampling factor 2/);
  await assert.rejects(trainVae({ config: config('c', 4), sets: ['data.background=purple'], say: () => {} }), /data.background must be one of/);
  await assert.rejects(trainVae({ config: config('c', 4), sets: ['data.crop=7'], say: () => {} }), /data.crop 7 must be a multiple of 2 below/);
  await assert.rejects(trainVae({ config: config('c', 4), resume: true, say: () => {} }), /--resume: no ckpt_\*\.pt/);
});
