/**
 * Validation as train_diffusion.py's `log_validation` (spec mvdiffusion.md §7): every validation sample is sampled
 * with the EMA weights at each guidance scale (DDIM, η from `pipe_validation_kwargs`, the generator seeded with
 * the run's seed), scored per view against its ground truth — PSNR, SSIM (window 11, Gaussian, per channel) and
 * LPIPS when its weights are given — and written as pictures:
 *   <val_out_dir>/global_step_<n>/<b:04d>/{input, gt, pred_gs_<g>, grid_gs_<g>}.png, metrics_gs_<g>.txt
 *   <val_out_dir>/global_step_<n>/validation-metrics.txt
 * A grid has three rows with one column per view: the input, the targets, the predictions.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MvDiffusionPipeline } from '../../diffusion/pipeline.ts';
import { writePng, vconcat } from '../../io/image.ts';
import type { LpipsMetric } from '../gslrm/lpips.ts';
import { viewRow } from '../gslrm/visuals.ts';
import { psnr, ssim } from '../metrics.ts';
import type { MvTrainConfig } from './config.ts';
import type { FixViewDataset } from './dataset.ts';

export interface GuidanceScore {
  guidance: number;
  psnr: number;
  ssim: number;
  /** null when no LPIPS weights were given. */
  lpips: number | null;
}

export interface ValidationResult {
  dir: string;
  samples: number;
  scores: GuidanceScore[];
}

const toU8 = (x: number) => Math.round(Math.min(1, Math.max(0, x)) * 255);

export async function validateMv(
  pipe: MvDiffusionPipeline,
  cfg: MvTrainConfig,
  data: FixViewDataset,
  outDir: string,
  step: number,
  opts: { lpips?: LpipsMetric; maxSamples?: number; onSample?: (i: number, n: number) => void } = {},
): Promise<ValidationResult> {
  const S = cfg.imageSize;
  const V = cfg.views;
  const n = S * S;
  const dir = join(outDir, `global_step_${String(step).padStart(4, '0')}`);
  mkdirSync(dir, { recursive: true });
  const count = Math.min(data.length, opts.maxSamples ?? data.length);
  const totals = cfg.validationGuidanceScales.map((g) => ({ guidance: g, psnr: 0, ssim: 0, lpips: 0, views: 0 }));
  for (let b = 0; b < count; b++) {
    const item = await data.get(b, 0, b);
    const sampleDir = join(dir, String(b).padStart(4, '0'));
    mkdirSync(sampleDir, { recursive: true });
    const rgb = new Uint8Array(n * 3);
    for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = toU8(item.input[c * n + i]!);
    const image = { width: S, height: S, data: rgb };
    const inputRow = viewRow(
      Float32Array.from({ length: V * 3 * n }, (_, i) => item.input[i % (3 * n)]!),
      V,
      S,
    );
    const gtRow = viewRow(item.targets, V, S);
    await writePng(join(sampleDir, 'input.png'), viewRow(item.input, 1, S));
    await writePng(join(sampleDir, 'gt.png'), gtRow);
    for (const t of totals) {
      const r = await pipe.generate(image, {
        steps: cfg.validationInferenceSteps,
        guidanceScale: t.guidance,
        eta: cfg.validationEta,
        seed: cfg.seed,
      });
      const pred = new Float32Array(V * 3 * n);
      r.images.forEach((im, v) => {
        for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) pred[(v * 3 + c) * n + i] = im.data[i * 3 + c]! / 255;
      });
      let p = 0,
        s = 0;
      for (let v = 0; v < V; v++) {
        const a = pred.subarray(v * 3 * n, (v + 1) * 3 * n),
          gt = item.targets.subarray(v * 3 * n, (v + 1) * 3 * n);
        p += psnr(a, gt);
        s += ssim(a, gt, 3, S, S);
      }
      const lp = opts.lpips ? (await opts.lpips.distances(pred, item.targets)).reduce((x, y) => x + y, 0) : NaN;
      t.psnr += p;
      t.ssim += s;
      t.lpips += lp;
      t.views += V;
      const tag = t.guidance.toFixed(1);
      const predRow = viewRow(pred, V, S);
      await writePng(join(sampleDir, `pred_gs_${tag}.png`), predRow);
      await writePng(join(sampleDir, `grid_gs_${tag}.png`), vconcat([inputRow, gtRow, predRow]));
      writeFileSync(
        join(sampleDir, `metrics_gs_${tag}.txt`),
        `psnr: ${p / V}\nlpips: ${opts.lpips ? lp / V : 'n/a'}\nssim: ${s / V}\n`,
      );
    }
    opts.onSample?.(b + 1, count);
  }
  const scores = totals.map((t) => ({
    guidance: t.guidance,
    psnr: t.psnr / t.views,
    ssim: t.ssim / t.views,
    lpips: opts.lpips ? t.lpips / t.views : null,
  }));
  writeFileSync(
    join(dir, 'validation-metrics.txt'),
    scores
      .map(
        (s) =>
          `guidance_scale: ${s.guidance.toFixed(1)}\n psnr: ${s.psnr}\nlpips: ${s.lpips ?? 'n/a'}\nssim: ${s.ssim}\n`,
      )
      .join(''),
  );
  return { dir, samples: count, scores };
}
