/**
 * Held-out evaluation of a trained reconstructor: each held-out sample is reconstructed from fixed input views of
 * the 32-view rig and rendered at every other rig camera (held-out cameras); PSNR and SSIM against the ground
 * truth, next to two trivial baselines — an all-white image and the mean training view (the per-pixel mean of all
 * views of the training samples). Optionally writes, per sample, inputs | ground truth | prediction strips.
 */
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { hconcat, planarToImage, vconcat, writePng } from '../../io/image.ts';
import { psnr, ssim } from '../metrics.ts';
import type { GslrmTrainConfig } from './config.ts';
import { RandomViewDataset } from './dataset.ts';
import type { GslrmTrainStep } from './step.ts';

export interface HeldOutScores {
  samples: number;
  views: number;
  model: { psnr: number; ssim: number };
  white: { psnr: number; ssim: number };
  meanView: { psnr: number; ssim: number };
}

export interface HeldOutOptions {
  /** Rig views used as inputs (default every 90°: 0, 8, 16, 24). */
  inputs?: readonly number[];
  /** Views per sample in the rig (32). */
  rigViews?: number;
  /** Write pictures of the first `pictures` samples under `picturesDir`. */
  pictures?: number;
  picturesDir?: string;
}

export async function evaluateHeldOut(
  step: GslrmTrainStep,
  cfg: GslrmTrainConfig,
  trainSamples: readonly string[],
  heldSamples: readonly string[],
  o: HeldOutOptions = {},
): Promise<HeldOutScores> {
  const S = cfg.model.image_tokenizer.image_size,
    plane = 3 * S * S;
  const rig = o.rigViews ?? 32;
  const inputs = o.inputs ?? [0, 8, 16, 24];
  if (inputs.length !== cfg.dataset.numInputViews)
    throw new Error(`the model takes ${cfg.dataset.numInputViews} input views; ${inputs.length} given`);
  const opts = {
    imageSize: S,
    numViews: rig,
    numInputViews: inputs.length,
    maximizeOverlap: false,
    background: 'white' as const,
    fixedViews: true,
  };

  const trainDs = new RandomViewDataset(trainSamples, opts, 0);
  const mean = new Float32Array(plane);
  for (let i = 0; i < trainDs.length; i++) {
    const s = await trainDs.get(i, 0, i);
    for (let k = 0; k < s.rgb.length; k++) mean[k % plane] += s.rgb[k]! / (rig * trainDs.length);
  }
  const white = new Float32Array(plane).fill(1);
  const heldDs = new RandomViewDataset(heldSamples, opts, 0);
  const targets = [...Array(rig).keys()].filter((v) => !inputs.includes(v));
  const acc = { model: [0, 0], white: [0, 0], meanView: [0, 0] };
  let n = 0;
  for (let i = 0; i < heldDs.length; i++) {
    const all = await heldDs.get(i, 0, i);
    const order = [...inputs, ...targets];
    const rgb = new Float32Array(order.length * plane);
    order.forEach((v, k) => rgb.set(all.rgb.subarray(v * plane, (v + 1) * plane), k * plane));
    const sample = { ...all, rgb, cameras: order.map((v) => all.cameras[v]!), viewIndices: order };
    const { renders } = await step.predict(
      sample,
      targets.map((v) => all.cameras[v]!),
    );
    targets.forEach((v, k) => {
      const gt = all.rgb.subarray(v * plane, (v + 1) * plane);
      const pred = renders.subarray(k * plane, (k + 1) * plane).map((x) => Math.min(1, Math.max(0, x)));
      const add = (key: keyof typeof acc, img: Float32Array) => {
        acc[key][0] += psnr(img, gt);
        acc[key][1] += ssim(img, gt, 3, S, S);
      };
      add('model', pred);
      add('white', white);
      add('meanView', mean);
      n++;
    });
    if (o.picturesDir && i < (o.pictures ?? 0)) {
      mkdirSync(o.picturesDir, { recursive: true });
      const row = (stack: Float32Array, views: number[], from: (v: number, k: number) => Float32Array) =>
        hconcat(views.map((v, k) => planarToImage(from(v, k), S, S)));
      const shown = targets.filter((_, k) => k % 4 === 0);
      const inRow = row(rgb, inputs.slice(), (v) => all.rgb.subarray(v * plane, (v + 1) * plane));
      const gtRow = row(rgb, shown, (v) => all.rgb.subarray(v * plane, (v + 1) * plane));
      const prRow = row(renders, shown, (v) => {
        const k = targets.indexOf(v);
        return renders.subarray(k * plane, (k + 1) * plane);
      });
      await writePng(join(o.picturesDir, `${basename(all.dir)}_inputs.png`), inRow);
      await writePng(join(o.picturesDir, `${basename(all.dir)}_gt_vs_pred.png`), vconcat([gtRow, prRow]));
    }
  }
  const f = (k: keyof typeof acc) => ({ psnr: acc[k][0]! / n, ssim: acc[k][1]! / n });
  return {
    samples: heldDs.length,
    views: targets.length,
    model: f('model'),
    white: f('white'),
    meanView: f('meanView'),
  };
}
