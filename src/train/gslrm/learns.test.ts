import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { readYamlTree } from '../config-tree.ts';
import { listCheckpoints, readCheckpoint } from '../checkpoint.ts';
import { parseGslrmTrainConfig } from './config.ts';
import { readSampleList } from './dataset.ts';
import { evaluateHeldOut } from './evaluate.ts';
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
      dataset: join(train, 'data_gslrm_train.txt'),
      checkpointDir: join(root, 'run'),
      d: 64,
      dHead: 16,
      layers: 2,
      passes: 600,
      lr: 0.002,
      warmup: 20,
      printEvery: 20,
      checkpointEvery: 100000,
    });
    await run(process.execPath, [BIN, 'train', 'gslrm', '--config', cfgPath, '--threads', '2'], {
      maxBuffer: 16 << 20,
    });

    const { config: cfg } = parseGslrmTrainConfig(readYamlTree(cfgPath), cfgPath);
    const ckpt = await readCheckpoint(listCheckpoints(join(root, 'run'))[0]!);
    const step = await GslrmTrainStep.create(cfg, ckpt.model, { threads: 2 });
    try {
      const r = await evaluateHeldOut(
        step,
        cfg,
        readSampleList(join(train, 'data_gslrm_train.txt')),
        readSampleList(join(held, 'data_gslrm_train.txt')),
      );
      const m = r.model.psnr,
        w = r.white.psnr,
        mv = r.meanView.psnr;
      process.stderr.write(
        `held-out PSNR: model ${m.toFixed(2)} dB, all-white ${w.toFixed(2)} dB, mean training view ${mv.toFixed(2)} dB\n`,
      );
      assert.equal(r.views, 28);
      assert.ok(m >= w + 3, `model ${m.toFixed(2)} dB vs all-white ${w.toFixed(2)} dB`);
      assert.ok(m >= mv + 3, `model ${m.toFixed(2)} dB vs mean training view ${mv.toFixed(2)} dB`);
    } finally {
      await step.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
