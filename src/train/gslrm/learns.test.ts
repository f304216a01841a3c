import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readYamlTree } from '../config-tree.ts';
import { listCheckpoints, readCheckpoint } from '../checkpoint.ts';
import { psnr } from '../metrics.ts';
import { parseGslrmTrainConfig } from './config.ts';
import { RandomViewDataset, readSampleList } from './dataset.ts';
import { GslrmTrainStep } from './step.ts';
import { BIN, synthHeads, writeSmallConfig } from './testing/fixtures.ts';

const run = promisify(execFile);

/**
 * A small reconstructor trained for 600 passes (~1.5 min) on 8 synthetic heads, then asked to reconstruct 3 heads it never saw
 * from 4 views (every 90°) and rendered at the 28 other rig cameras: its renders must beat both an all-white image
 * and the mean training view by ≥ 3 dB PSNR.
 */
test('train gslrm: a small reconstructor learns — held-out heads at held-out cameras beat white and the mean view by ≥ 3 dB', async () => {
  const root = mkdtempSync(join(tmpdir(), 'gslrm-learns-'));
  try {
    const train = await synthHeads(join(root, 'train'), 8, 32, { seed: 11 });
    const held = await synthHeads(join(root, 'held'), 3, 32, { seed: 99 });
    const cfgPath = writeSmallConfig(join(root, 'small.yaml'), {
      dataset: join(train, 'data_gslrm_train.txt'), checkpointDir: join(root, 'run'), d: 64, dHead: 16, layers: 2,
      passes: 600, lr: 0.002, warmup: 20, printEvery: 20, checkpointEvery: 100000,
    });
    await run(process.execPath, [BIN, 'train', 'gslrm', '--config', cfgPath, '--threads', '2'], { maxBuffer: 16 << 20 });

    const { config: cfg } = parseGslrmTrainConfig(readYamlTree(cfgPath), cfgPath);
    const ckpt = await readCheckpoint(listCheckpoints(join(root, 'run'))[0]!);
    const step = await GslrmTrainStep.create(cfg, ckpt.model, { threads: 2 });
    try {
      const S = 32, plane = 3 * S * S;
      const opts = { imageSize: S, numViews: 32, numInputViews: 4, maximizeOverlap: false, background: 'white' as const, fixedViews: true };
      // The mean of every training view (all 32 cameras of all 8 heads).
      const trainDs = new RandomViewDataset(readSampleList(join(train, 'data_gslrm_train.txt')), opts, 0);
      const mean = new Float32Array(plane);
      for (let i = 0; i < trainDs.length; i++) {
        const s = await trainDs.get(i, 0, i);
        for (let k = 0; k < s.rgb.length; k++) mean[k % plane] += s.rgb[k]! / (32 * trainDs.length);
      }
      const heldDs = new RandomViewDataset(readSampleList(join(held, 'data_gslrm_train.txt')), opts, 0);
      const inputs = [0, 8, 16, 24];
      const targets = [...Array(32).keys()].filter((v) => !inputs.includes(v));
      const white = new Float32Array(plane).fill(1);
      const score = { model: 0, white: 0, mean: 0 };
      let n = 0;
      for (let i = 0; i < heldDs.length; i++) {
        const all = await heldDs.get(i, 0, i);
        const order = [...inputs, ...targets];
        const rgb = new Float32Array(order.length * plane);
        order.forEach((v, k) => rgb.set(all.rgb.subarray(v * plane, (v + 1) * plane), k * plane));
        const sample = { ...all, rgb, cameras: order.map((v) => all.cameras[v]!), viewIndices: order };
        const { renders } = await step.predict(sample, targets.map((v) => all.cameras[v]!));
        targets.forEach((v, k) => {
          const gt = all.rgb.subarray(v * plane, (v + 1) * plane);
          score.model += psnr(renders.subarray(k * plane, (k + 1) * plane), gt);
          score.white += psnr(white, gt);
          score.mean += psnr(mean, gt);
          n++;
        });
      }
      const m = score.model / n, w = score.white / n, mv = score.mean / n;
      process.stderr.write(`held-out PSNR: model ${m.toFixed(2)} dB, all-white ${w.toFixed(2)} dB, mean training view ${mv.toFixed(2)} dB\n`);
      assert.ok(m >= w + 3, `model ${m.toFixed(2)} dB vs all-white ${w.toFixed(2)} dB`);
      assert.ok(m >= mv + 3, `model ${m.toFixed(2)} dB vs mean training view ${mv.toFixed(2)} dB`);
    } finally {
      await step.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
