/**
 * `npm run bench -- sampler-quality [--heads 20] [--runs ddim:50,dpmpp2m:20,…] [--seeds 4,5,6] [--data data/demo]`
 *
 * Which sampler and step count reach DDIM-50's quality (issue #19): sampled views cannot match another sampler's
 * pixel for pixel, so each is scored against ground truth — the shipped demo pipeline, given a held-out head's true
 * front view (data/demo/heldout, scripts/train-demo.sh), generates the 6 views; PSNR/SSIM of the 5 it invents
 * against the true views, on white, averaged over the heads. DDIM-50 runs at several seeds: the spread of its
 * per-seed means is the noise floor a faster setting has to land within (`within DDIM-50's spread` in the notes).
 * Every setting runs at the first seed; time per head counts the sampling alone (CFG 3, 2 threads).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MvDiffusionPipeline, SCHEDULERS, type Scheduler } from '../src/diffusion/pipeline.ts';
import { resolveWeights } from '../src/pipeline/weights.ts';
import { cam, flag, samples, Score, view } from './demo-quality.ts';
import type { BenchRun } from './figure.ts';

interface Setting {
  scheduler: Scheduler;
  steps: number;
}

const DEFAULT_RUNS = 'ddim:50,ddim:25,ddim:15,dpmpp2m:25,dpmpp2m:20,dpmpp2m:15,dpmpp2m:10,unipc:20,unipc:15,unipc:10';

export const run: BenchRun = async function* (args) {
  const data = flag(args, '--data', 'data/demo');
  const heads = Number(flag(args, '--heads', '20'));
  const seeds = flag(args, '--seeds', '4,5,6').split(',').map(Number);
  const runs: Setting[] = flag(args, '--runs', DEFAULT_RUNS).split(',').map((r) => {
    const [scheduler, steps] = r.split(':');
    if (!SCHEDULERS.includes(scheduler as Scheduler) || !(Number(steps) >= 1)) {
      throw new Error(`--runs: bad entry ${r}`);
    }
    return { scheduler: scheduler as Scheduler, steps: Number(steps) };
  });
  const dir = join(data, 'heldout/mvdiffusion');
  if (!existsSync(dir)) throw new Error(`${dir} is missing: make it with the synth commands of scripts/train-demo.sh`);
  const w = await resolveWeights({ model: 'demo' });
  const pipe = await MvDiffusionPipeline.load(w.pipeckpts, {
    promptEmbeds: join(w.root, 'mvdiffusion/clr_embeds.pt'), threads: 2,
  });
  const S = pipe.imageSize, plane = 3 * S * S;
  try {
    const heldout = samples(dir).slice(0, heads);
    const truth = await Promise.all(heldout.map((d) => Promise.all([...Array(6).keys()].map((v) =>
      view(join(d, cam(v)), S)))));
    const score = async (s: Setting, seed: number): Promise<{ psnr: number; ssim: number; seconds: number }> => {
      const sc = new Score(S);
      let t = 0;
      for (const gt of truth) {
        const front = new Uint8Array(plane);
        for (let i = 0; i < S * S; i++) {
          for (let c = 0; c < 3; c++) front[3 * i + c] = Math.round(255 * gt[0]![c * S * S + i]!);
        }
        const t0 = performance.now();
        const out = await pipe.generate({ width: S, height: S, data: front }, {
          steps: s.steps, scheduler: s.scheduler, guidanceScale: 3, eta: 1, seed,
        });
        t += performance.now() - t0;
        for (let v = 1; v < 6; v++) {
          const x = new Float32Array(plane);
          const im = out.images[v]!;
          for (let i = 0; i < S * S; i++) for (let c = 0; c < 3; c++) x[c * S * S + i] = im.data[3 * i + c]! / 255;
          sc.add(x, gt[v]!);
        }
      }
      return { psnr: sc.psnr, ssim: sc.ssim, seconds: t / truth.length / 1000 };
    };
    const ddim = [];
    for (const seed of seeds) ddim.push(await score({ scheduler: 'ddim', steps: 50 }, seed));
    const lo = { psnr: Math.min(...ddim.map((d) => d.psnr)), ssim: Math.min(...ddim.map((d) => d.ssim)) };
    const hi = { psnr: Math.max(...ddim.map((d) => d.psnr)), ssim: Math.max(...ddim.map((d) => d.ssim)) };
    const note = `${truth.length} held-out heads, 5 novel views each; DDIM-50 over seeds ${seeds.join(', ')}: ` +
      `${lo.psnr.toFixed(2)}–${hi.psnr.toFixed(2)} dB, SSIM ${lo.ssim.toFixed(4)}–${hi.ssim.toFixed(4)}`;
    yield { name: 'DDIM-50 seed-to-seed spread, PSNR', value: hi.psnr - lo.psnr, unit: 'dB', note };
    yield { name: 'DDIM-50 seed-to-seed spread, SSIM', value: hi.ssim - lo.ssim, unit: '' };
    for (const s of runs) {
      const r = s.scheduler === 'ddim' && s.steps === 50 ? ddim[0]! : await score(s, seeds[0]!);
      const within = r.psnr >= lo.psnr && r.ssim >= lo.ssim;
      const tag = `${s.scheduler}-${s.steps}`;
      yield { name: `${tag} PSNR`, value: r.psnr, unit: 'dB', baseline: ddim[0]!.psnr, baselineName: 'DDIM-50',
        note: within ? "within (or above) DDIM-50's spread" : "below DDIM-50's spread" };
      yield { name: `${tag} SSIM`, value: r.ssim, unit: '', baseline: ddim[0]!.ssim, baselineName: 'DDIM-50' };
      yield { name: `${tag} sampling time per head`, value: r.seconds, unit: 's', baseline: ddim[0]!.seconds,
        baselineName: 'DDIM-50', higherIsBetter: false };
    }
  } finally {
    await pipe.close();
  }
};
