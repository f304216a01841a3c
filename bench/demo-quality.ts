/**
 * `npm run bench -- demo-quality [--heads 20] [--steps 50] [--data data/demo]`: how good the shipped demo models
 * are, on procedural heads they never saw (`data/demo/heldout`, scripts/train-demo.sh makes it), against ground
 * truth. Scores are PSNR (dB) and SSIM on a white background.
 *  - views: the demo pipeline, given a held-out head's true front view, generates the 6 views (DDIM, CFG 3, seed 4);
 *    the 5 it has to invent are scored against the true views. Baselines: copy the input (the front view as every
 *    view) and the mean view (the training set's mean image of that view slot).
 *  - renders: the demo GS-LRM reconstructs from the 6 generated views (the whole pipeline) and, separately, from
 *    the 6 true views (the reconstructor alone); both are rendered at the 32 held-out cameras of the 20° ring
 *    (never an input). Baselines: copy the input, and the training set's mean image over that ring.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readCameraFile } from '../src/cameras/opencv-json.ts';
import { faceliftViews } from '../src/cameras/rigs.ts';
import type { Camera } from '../src/cameras/camera.ts';
import { MvDiffusionPipeline } from '../src/diffusion/pipeline.ts';
import { loadGslrmConfig } from '../src/lrm/config.ts';
import { reconstruct, type GslrmModel } from '../src/lrm/reconstruct.ts';
import { loadGslrmWeights } from '../src/lrm/weights.ts';
import { resolveWeights } from '../src/pipeline/weights.ts';
import { SplatRenderer } from '../src/splat/renderer.ts';
import { composite, readView } from '../src/train/gslrm/dataset.ts';
import { psnr, ssim } from '../src/train/metrics.ts';
import type { BenchRun, Figure } from './figure.ts';

export function flag(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1]! : fallback;
}

const WHITE = [1, 1, 1] as const;

export async function view(file: string, S: number): Promise<Float32Array> {
  const img = await readView(file, S);
  const rgb = new Float32Array(3 * S * S);
  composite(img.data, img.channels, S, WHITE, rgb, new Float32Array(S * S));
  return rgb;
}

export const samples = (dir: string) =>
  readdirSync(dir).filter((d) => d.startsWith('sample_')).sort().map((d) => join(dir, d));
export const cam = (v: number) => `cam_${String(v).padStart(3, '0')}.png`;

export class Score {
  private p = 0;
  private s = 0;
  private n = 0;
  constructor(private readonly S: number) {}
  add(pred: Float32Array, gt: Float32Array): void {
    this.p += psnr(pred, gt);
    this.s += ssim(pred, gt, 3, this.S, this.S);
    this.n++;
  }
  get psnr(): number {
    return this.p / this.n;
  }
  get ssim(): number {
    return this.s / this.n;
  }
}

export const run: BenchRun = async function* (args) {
  const data = flag(args, '--data', 'data/demo');
  const heads = Number(flag(args, '--heads', '20'));
  const steps = Number(flag(args, '--steps', '50'));
  if (!existsSync(join(data, 'heldout/mvdiffusion')) || !existsSync(join(data, 'train/mvdiffusion'))) {
    throw new Error(`${data} has no train/ and heldout/ heads: make them with the synth commands of scripts/train-demo.sh ` +
      '(its first two steps), or pass --data DIR');
  }
  const w = await resolveWeights({ model: 'demo' });
  const promptEmbeds = join(w.root, 'mvdiffusion/clr_embeds.pt');
  const pipe = await MvDiffusionPipeline.load(w.pipeckpts, { promptEmbeds, threads: 2 });
  const S = pipe.imageSize;
  const cfg = loadGslrmConfig(w.gslrmConfig);
  const model: GslrmModel = { config: cfg, weights: await loadGslrmWeights(w.gslrmCheckpoint, cfg) };
  const renderer = await SplatRenderer.create({ threads: 2 });
  const plane = 3 * S * S;
  try {
    // Training-set means: per view slot, and over the 20° ring (cam_032 … cam_063).
    const trainMv = samples(join(data, 'train/mvdiffusion'));
    const slotMean = [...Array(6)].map(() => new Float32Array(plane));
    for (const d of trainMv) {
      for (let v = 0; v < 6; v++) {
        const x = await view(join(d, cam(v)), S);
        for (let i = 0; i < plane; i++) slotMean[v]![i] += x[i]! / trainMv.length;
      }
    }
    const trainRig = samples(join(data, 'train/gslrm')).slice(0, 60);
    const ringMean = new Float32Array(plane);
    for (const d of trainRig) {
      for (let v = 32; v < 64; v += 4) {
        const x = await view(join(d, 'images', cam(v)), S);
        for (let i = 0; i < plane; i++) ringMean[i] += x[i]! / (trainRig.length * 8);
      }
    }

    const score = {
      views: new Score(S), viewsCopy: new Score(S), viewsMean: new Score(S),
      pipeline: new Score(S), oracle: new Score(S), rendersCopy: new Score(S), rendersMean: new Score(S),
    };
    const six = faceliftViews(S);
    const renderAt = async (views: Float32Array, cams: Camera[], gt: Float32Array[], into: Score) => {
      const rec = await reconstruct({ views: 6, height: S, width: S, rgb: views }, six, model, { threads: 2 });
      await renderer.setScene(rec.gaussians);
      for (let k = 0; k < cams.length; k++) {
        into.add((await renderer.render(cams[k]!, { background: WHITE })).rgb, gt[k]!);
      }
    };
    let t = 0;
    const t0 = performance.now();
    for (const d of samples(join(data, 'heldout/mvdiffusion')).slice(0, heads)) {
      const gtViews = await Promise.all([...Array(6).keys()].map((v) => view(join(d, cam(v)), S)));
      const front = new Uint8Array(plane);
      for (let i = 0; i < S * S; i++) {
        for (let c = 0; c < 3; c++) front[3 * i + c] = Math.round(255 * gtViews[0]![c * S * S + i]!);
      }
      const t1 = performance.now();
      const settings = { steps, guidanceScale: 3, eta: 1, seed: 4 };
      const out = await pipe.generate({ width: S, height: S, data: front }, settings);
      t += performance.now() - t1;
      const gen = out.images.map((im) => {
        const x = new Float32Array(plane);
        for (let i = 0; i < S * S; i++) for (let c = 0; c < 3; c++) x[c * S * S + i] = im.data[3 * i + c]! / 255;
        return x;
      });
      for (let v = 1; v < 6; v++) {
        score.views.add(gen[v]!, gtViews[v]!);
        score.viewsCopy.add(gtViews[0]!, gtViews[v]!);
        score.viewsMean.add(slotMean[v]!, gtViews[v]!);
      }
      const rig = join(d.replace(/mvdiffusion(?=[/\\]sample_)/, 'gslrm'));
      const cams = (await readCameraFile(join(rig, 'opencv_cameras.json'))).frames.slice(32).map((f) => f.camera);
      const gtRing = await Promise.all(cams.map((_, k) => view(join(rig, 'images', cam(32 + k)), S)));
      const stack = (xs: Float32Array[]) => {
        const all = new Float32Array(6 * plane);
        xs.forEach((x, v) => all.set(x, v * plane));
        return all;
      };
      await renderAt(stack(gen), cams, gtRing, score.pipeline);
      await renderAt(stack(gtViews), cams, gtRing, score.oracle);
      for (const g of gtRing) {
        score.rendersCopy.add(gtViews[0]!, g);
        score.rendersMean.add(ringMean, g);
      }
    }
    const n = Math.min(heads, samples(join(data, 'heldout/mvdiffusion')).length);
    const note = `${n} held-out heads`;
    const fig = (name: string, s: Score, base: Score, baseName: string): Figure[] => [
      { name: `${name} PSNR`, value: s.psnr, unit: 'dB', baseline: base.psnr, baselineName: baseName, note },
      { name: `${name} SSIM`, value: s.ssim, unit: '', baseline: base.ssim, baselineName: baseName, note },
    ];
    yield* fig('generated views (5 novel)', score.views, score.viewsCopy, 'copy the input');
    yield* fig('generated views (5 novel)', score.views, score.viewsMean, 'mean training view of the slot');
    yield* fig('pipeline renders (20° ring)', score.pipeline, score.rendersCopy, 'copy the input');
    yield* fig('pipeline renders (20° ring)', score.pipeline, score.rendersMean, 'mean training view of the ring');
    yield* fig('GS-LRM from true views, renders (20° ring)', score.oracle, score.rendersMean,
      'mean training view of the ring');
    const timing = `${steps} DDIM steps, CFG 3, 2 threads`;
    yield { name: 'sampling time per head', value: t / n / 1000, unit: 's', note: timing };
    yield { name: 'bench wall time', value: (performance.now() - t0) / 1000, unit: 's' };
  } finally {
    await renderer.close();
    await pipe.close();
  }
};

