/**
 * GS-LRM validation (spec gslrm.md §7.3, §9): for each validation sample, the inputs go through the model and the
 * renders at every drawn view are compared with the ground truth. Per sample `metrics.txt` (psnr, lpips, ssim),
 * `perview_metrics.txt` and `gt_vs_pred.png` (ground truth over prediction); `summary.csv` with an average row;
 * optionally a turntable MP4 of the predicted Gaussians (of the first `turntableSamples` samples). LPIPS needs network weights this project does not have
 * here, so it is written as `n/a`, never computed with stand-in weights.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { renderTurntable } from '../../splat/turntable.ts';
import { writePng, vconcat } from '../../io/image.ts';
import { psnr, ssim } from '../metrics.ts';
import type { GslrmTrainConfig } from './config.ts';
import { RandomViewDataset } from './dataset.ts';
import type { GslrmTrainStep } from './step.ts';
import { viewRow } from './visuals.ts';

export interface ValidationResult {
  psnr: number;
  ssim: number;
  samples: number;
  perSample: Array<{ uid: string; psnr: number; ssim: number }>;
}

export async function validateGslrm(
  step: GslrmTrainStep,
  cfg: GslrmTrainConfig,
  samples: readonly string[],
  outDir: string,
  opts: { turntableFrames?: number; turntableSamples?: number; say?: (l: string) => void } = {},
): Promise<ValidationResult> {
  const S = cfg.model.image_tokenizer.image_size;
  // The same draw every time (pass 0 of the "validation" stream), so validations at different passes compare.
  const ds = new RandomViewDataset(
    samples,
    {
      imageSize: S,
      numViews: cfg.dataset.numViews,
      numInputViews: cfg.dataset.numInputViews,
      maximizeOverlap: cfg.dataset.maximizeOverlap,
      background: 'white',
    },
    cfg.seed ^ 0x5eed,
    opts.say,
  );
  mkdirSync(outDir, { recursive: true });
  const per: ValidationResult['perSample'] = [];
  for (let i = 0; i < samples.length; i++) {
    const s = await ds.get(i, 0, i);
    const uid = basename(s.dir);
    const { renders, gaussians } = await step.predict(s, s.cameras);
    const V = s.cameras.length,
      plane = 3 * S * S;
    const views = Array.from({ length: V }, (_, v) => ({
      psnr: psnr(renders.subarray(v * plane, (v + 1) * plane), s.rgb.subarray(v * plane, (v + 1) * plane)),
      ssim: ssim(
        clip01(renders.subarray(v * plane, (v + 1) * plane)),
        s.rgb.subarray(v * plane, (v + 1) * plane),
        3,
        S,
        S,
      ),
    }));
    const mean = (k: 'psnr' | 'ssim') => views.reduce((a, v) => a + v[k], 0) / V;
    const dir = join(outDir, uid);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'metrics.txt'), `psnr: ${mean('psnr')}\nlpips: n/a\nssim: ${mean('ssim')}\n`);
    writeFileSync(
      join(dir, 'perview_metrics.txt'),
      views.map((v, k) => `view ${s.viewIndices[k]}: psnr ${v.psnr} lpips n/a ssim ${v.ssim}`).join('\n') + '\n',
    );
    await writePng(join(dir, 'gt_vs_pred.png'), vconcat([viewRow(s.rgb, V, S), viewRow(renders, V, S)]));
    if ((opts.turntableFrames ?? 0) > 0 && i < (opts.turntableSamples ?? Infinity)) {
      await renderTurntable(gaussians, {
        out: join(dir, 'turntable.mp4'),
        frames: opts.turntableFrames,
        resolution: S % 2 ? S + 1 : S,
      });
    }
    per.push({ uid, psnr: mean('psnr'), ssim: mean('ssim') });
  }
  const avg = (k: 'psnr' | 'ssim') => per.reduce((a, r) => a + r[k], 0) / per.length;
  writeFileSync(
    join(outDir, 'summary.csv'),
    [
      'uid,psnr,lpips,ssim',
      ...per.map((r) => `${r.uid},${r.psnr},n/a,${r.ssim}`),
      `average,${avg('psnr')},n/a,${avg('ssim')}`,
    ].join('\n') + '\n',
  );
  return { psnr: avg('psnr'), ssim: avg('ssim'), samples: per.length, perSample: per };
}

function clip01(x: Float32Array): Float32Array {
  return x.map((v) => Math.min(1, Math.max(0, v)));
}
