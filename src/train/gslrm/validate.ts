/**
 * GS-LRM validation (spec gslrm.md §7.3, §9): for each validation sample, the inputs go through the model and the
 * renders at every drawn view are compared with the ground truth. Per sample `metrics.txt` (psnr, lpips, ssim),
 * `perview_metrics.txt` and `gt_vs_pred.png` (ground truth over prediction); `summary.csv` with an average row;
 * optionally a turntable MP4 of the predicted Gaussians (of the first `turntableSamples` samples). LPIPS is
 * computed when its weights were given (`lpips`), else written as `n/a` — never with stand-in weights.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { writePng, vconcat } from '../../io/image.ts';
import { renderTurntable } from '../../splat/turntable.ts';
import { psnr, ssim } from '../metrics.ts';
import type { GslrmTrainConfig } from './config.ts';
import { RandomViewDataset } from './dataset.ts';
import type { LpipsMetric } from './lpips.ts';
import type { GslrmTrainStep } from './step.ts';
import { viewRow } from './visuals.ts';

export interface Scores {
  psnr: number;
  ssim: number;
  lpips: number | null;
}
export interface ValidationResult extends Scores {
  samples: number;
  perSample: Array<Scores & { uid: string }>;
}

export interface ValidateOptions {
  turntableFrames?: number;
  turntableSamples?: number;
  /** LPIPS on the validation views (built for `num_views` images). */
  lpips?: LpipsMetric;
  say?: (l: string) => void;
}

export async function validateGslrm(
  step: GslrmTrainStep,
  cfg: GslrmTrainConfig,
  samples: readonly string[],
  outDir: string,
  opts: ValidateOptions = {},
): Promise<ValidationResult> {
  const S = cfg.model.image_tokenizer.image_size;
  const plane = 3 * S * S;
  // The same draw every time (pass 0 of the validation stream), so validations at different passes compare.
  const ds = new RandomViewDataset(
    samples,
    {
      imageSize: S,
      numViews: cfg.dataset.numViews,
      numInputViews: cfg.dataset.numInputViews,
      maximizeOverlap: cfg.dataset.maximizeOverlap,
      background: 'white',
      // The mouse dataset's views, cameras and masks, without the training-time augmentation.
      mouse: cfg.mouse ? { ...cfg.mouse, augmentation: null } : null,
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
    const V = s.cameras.length;
    const pred = renders.map((v) => Math.min(1, Math.max(0, v)));
    const dist = opts.lpips ? await opts.lpips.distances(pred, s.rgb) : null;
    const views: Scores[] = Array.from({ length: V }, (_, v) => {
      const p = pred.subarray(v * plane, (v + 1) * plane);
      const t = s.rgb.subarray(v * plane, (v + 1) * plane);
      return { psnr: psnr(p, t), ssim: ssim(p, t, 3, S, S), lpips: dist ? dist[v]! : null };
    });
    const row = { uid, ...meanScores(views) };
    const dir = join(outDir, uid);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'metrics.txt'), `psnr: ${row.psnr}\nlpips: ${fmt(row.lpips)}\nssim: ${row.ssim}\n`);
    const lines = views.map((v, k) => `view ${s.viewIndices[k]}: psnr ${v.psnr} lpips ${fmt(v.lpips)} ssim ${v.ssim}`);
    writeFileSync(join(dir, 'perview_metrics.txt'), `${lines.join('\n')}\n`);
    await writePng(join(dir, 'gt_vs_pred.png'), vconcat([viewRow(s.rgb, V, S), viewRow(renders, V, S)]));
    if ((opts.turntableFrames ?? 0) > 0 && i < (opts.turntableSamples ?? Infinity)) {
      await renderTurntable(gaussians, { out: join(dir, 'turntable.mp4'), frames: opts.turntableFrames, resolution: S % 2 ? S + 1 : S });
    }
    per.push(row);
  }
  const avg = meanScores(per);
  const csv = ['uid,psnr,lpips,ssim', ...per.map((r) => `${r.uid},${r.psnr},${fmt(r.lpips)},${r.ssim}`)];
  csv.push(`average,${avg.psnr},${fmt(avg.lpips)},${avg.ssim}`);
  writeFileSync(join(outDir, 'summary.csv'), `${csv.join('\n')}\n`);
  return { ...avg, samples: per.length, perSample: per };
}

function meanScores(rows: readonly Scores[]): Scores {
  const mean = (k: 'psnr' | 'ssim') => rows.reduce((a, r) => a + r[k], 0) / rows.length;
  const lp = rows.every((r) => r.lpips !== null) ? rows.reduce((a, r) => a + r.lpips!, 0) / rows.length : null;
  return { psnr: mean('psnr'), ssim: mean('ssim'), lpips: lp };
}

const fmt = (v: number | null): string => (v === null ? 'n/a' : String(v));
