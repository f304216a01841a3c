/**
 * It learns: the tiny golden UNet fine-tuned on 8 synthetic heads for 100 updates predicts v on 2 held-out heads
 * (fixed draws of timestep, noise and posterior sample) with a loss ≥ 30 % below where it started and below the
 * loss of predicting v̂ = 0 — for the trained weights and for their moving average (what the export ships).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MvDiffusionPipeline } from '../../diffusion/pipeline.ts';
import { applyOverrides, readYamlTree } from '../config-tree.ts';
import { readSampleList } from '../gslrm/dataset.ts';
import { synthHeads } from '../gslrm/testing/fixtures.ts';
import { listMvCheckpoints, readMvCheckpoint } from './checkpoint.ts';
import { parseMvTrainConfig } from './config.ts';
import { FixViewDataset, type MvItem } from './dataset.ts';
import { trainMvDiffusion } from './run.ts';
import { MvDiffusionTrainStep } from './step.ts';
import { OFFICIAL_CONFIG, TINY_CLR_EMBEDS, TINY_PIPECKPTS, tinySets } from './testing/tiny.ts';
import { initialUnet } from './unet-init.ts';

test('train mvdiffusion learns: held-out v-loss falls ≥ 30 % and below predicting 0 (tiny UNet, 8 heads, 100 updates)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'mv-learns-'));
  try {
    const data = await synthHeads(join(root, 'heads'), 10, 64, { layout: 'mvdiffusion', valFraction: 0.2, seed: 3 });
    const sets = tinySets({ data, out: join(root, 'run'), steps: 100, batch: 2, lr: 1e-3 });
    const tree = readYamlTree(OFFICIAL_CONFIG);
    applyOverrides(tree, sets);
    const { config: cfg } = parseMvTrainConfig(tree, 'test');
    const init = await initialUnet(cfg, join(TINY_PIPECKPTS, 'unet'), () => {});
    const pipe = await MvDiffusionPipeline.load(TINY_PIPECKPTS, {
      unet: { config: init.config, weights: init.params },
      promptEmbeds: TINY_CLR_EMBEDS,
      threads: 2,
    });
    const step = await MvDiffusionTrainStep.create(cfg, pipe, init.config, init.params, init.shapes, { threads: 2 });
    try {
      const held = new FixViewDataset(
        readSampleList(join(data, 'data_mvdiff_val.txt')),
        { views: 6, imageSize: 64, dataset: { ...cfg.train, background: 'white' }, referenceViews: [0], mouse: false },
        cfg.seed,
      );
      const items: MvItem[] = [];
      for (let i = 0; i < held.length; i++) items.push(await held.get(i, 0, i));
      const heldOut = async () => {
        let loss = 0,
          zero = 0,
          k = 0;
        for (let draw = 0; draw < 8; draw++) {
          for (let i = 0; i < items.length; i += 2) {
            const r = await step.evaluate(items.slice(i, i + 2), draw);
            loss += r.loss;
            zero += r.zeroLoss;
            k++;
          }
        }
        return { loss: loss / k, zero: zero / k };
      };
      const before = await heldOut();
      await trainMvDiffusion({ config: OFFICIAL_CONFIG, sets, threads: 2, say: () => {} });
      const ck = await readMvCheckpoint(listMvCheckpoints(join(root, 'run'))[0]!, [...init.params.keys()]);
      for (const [k, v] of ck.model) init.params.get(k)!.set(v);
      const trained = await heldOut();
      for (const [k, v] of ck.ema!.shadow) init.params.get(k)!.set(v);
      const averaged = await heldOut();
      const msg = `before ${before.loss.toFixed(4)}, trained ${trained.loss.toFixed(4)}, EMA ${averaged.loss.toFixed(4)}, v̂ = 0 ${before.zero.toFixed(4)}`;
      assert.ok(trained.loss <= 0.7 * before.loss, msg);
      assert.ok(trained.loss < before.zero, msg);
      assert.ok(averaged.loss < before.zero, msg);
    } finally {
      await step.close();
      await pipe.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
