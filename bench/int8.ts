/**
 * `npm run bench -- int8 [--only gslrm|diffusion|official] [--official] [--heads 6] [--data data/demo]`
 * (`--only official`: the official-shape diffusion stages alone)
 *
 * int8 linear layers (core/quantize.ts, `--int8`) against fp32, stage by stage, in one process each: time per run
 * (best of 2 after a warm-up) and fidelity — PSNR (dB, images in [0, 1]) for what is looked at, SNR (dB, 10·log₁₀
 * of signal over error power) for tensors.
 *  - gslrm: the GS-LRM forward on 6 views, rendered at the 6 input cameras; the golden tiny model, the demo model
 *    on held-out true views, and with --official the official shapes (random weights, 303.6 M) at 256² × 4 views.
 *  - diffusion: the image encoder's embedding, one UNet evaluation (CFG batch), the VAE decode of the same latents,
 *    and a whole DDIM-50 sampling (views PSNR against fp32's views, and each against the held-out truth); the demo
 *    pipeline, and with --official a pipeline of the official shapes (random weights) at 512².
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { faceliftViews } from '../src/cameras/rigs.ts';
import { MvDiffusionPipeline, type StepEvent } from '../src/diffusion/pipeline.ts';
import { loadGslrmConfig, OFFICIAL_GSLRM_CONFIG, type GslrmConfig } from '../src/lrm/config.ts';
import { reconstruct, type GslrmModel } from '../src/lrm/reconstruct.ts';
import { loadGslrmWeights, randomGslrmWeights } from '../src/lrm/weights.ts';
import { resolveWeights } from '../src/pipeline/weights.ts';
import { SplatRenderer } from '../src/splat/renderer.ts';
import { psnr } from '../src/train/metrics.ts';
import { cam, flag, samples, view } from './demo-quality.ts';
import type { BenchRun, Figure } from './figure.ts';

const GOLDEN = new URL('../../shared/golden/', import.meta.url).pathname;

export function snr(ref: ArrayLike<number>, got: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (ref[i]! - got[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return 10 * Math.log10(den / Math.max(num, 1e-30));
}

async function timed<T>(f: () => Promise<T>, repeats = 2): Promise<{ value: T; s: number }> {
  let value = await f();
  let best = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    value = await f();
    best = Math.min(best, (performance.now() - t) / 1000);
  }
  return { value, s: best };
}

function pair(tag: string, a: { s: number }, b: { s: number }, fidelity: Figure): Figure[] {
  return [
    { name: `${tag}: int8 time`, value: b.s, unit: 's', baseline: a.s, baselineName: 'fp32' },
    fidelity,
  ];
}

async function* gslrmPart(name: string, model: GslrmModel, rgb: Float32Array, views: number, repeats = 2,
): AsyncGenerator<Figure> {
  const S = model.config.image_tokenizer.image_size;
  const cams = faceliftViews(S).slice(0, views);
  const renderer = await SplatRenderer.create({ threads: 2 });
  try {
    const run = (int8: boolean) => async () => {
      const rec = await reconstruct({ views, height: S, width: S, rgb }, cams, model, { threads: 2, int8 });
      await renderer.setScene(rec.gaussians);
      const out: Float32Array[] = [];
      for (const c of cams) out.push((await renderer.render(c, { background: [1, 1, 1] })).rgb);
      return out;
    };
    const a = await timed(run(false), repeats);
    const b = await timed(run(true), repeats);
    const p = a.value.reduce((s, x, i) => s + psnr(b.value[i]!, x), 0) / views;
    yield* pair(`GS-LRM ${name} forward + renders`, a, b,
      { name: `GS-LRM ${name}: renders int8 vs fp32, PSNR`, value: p, unit: 'dB', note: `${views} views at ${S}²` });
  } finally {
    await renderer.close();
  }
}

async function* diffusionPart(name: string, pipe: MvDiffusionPipeline, pipeInt8: MvDiffusionPipeline,
  inputs: Array<{ front: Uint8Array; truth: Float32Array[] | null }>, sampling = true): AsyncGenerator<Figure> {
  const S = pipe.imageSize;
  const img = { width: S, height: S, data: inputs[0]!.front };
  const e = await Promise.all([timed(() => pipe.imageEmbedding(img)), timed(() => pipeInt8.imageEmbedding(img))]);
  yield* pair(`${name} image encoder`, e[0], e[1],
    { name: `${name} image encoder: embedding int8 vs fp32, SNR`, value: snr(e[0].value, e[1].value), unit: 'dB' });
  const oneStep = (p: MvDiffusionPipeline) => async () => {
    let ev: StepEvent | null = null;
    await p.generate(img, { steps: 1, guidanceScale: 3, eta: 0, seed: 4 }, (x) => (ev = x));
    return ev!;
  };
  const u = [await timed(oneStep(pipe)), await timed(oneStep(pipeInt8))];
  yield* pair(`${name} one step (encoders + UNet + decode)`, u[0]!, u[1]!, {
    name: `${name} UNet output (CFG batch) int8 vs fp32, SNR`,
    value: snr(u[0]!.value.unetOutput, u[1]!.value.unetOutput), unit: 'dB',
  });
  const lat = u[0]!.value.latents;
  const d = [await timed(() => pipe.decode(lat)), await timed(() => pipeInt8.decode(lat))];
  yield* pair(`${name} VAE decode (6 views)`, d[0]!, d[1]!, {
    name: `${name} VAE decode int8 vs fp32, PSNR`, value: psnr(d[1]!.value.map((x) => (x + 1) / 2),
      d[0]!.value.map((x) => (x + 1) / 2)), unit: 'dB',
  });
  if (!sampling) return;
  // Whole sampling: views against fp32's, and both against the truth.
  let pv = 0, tA = 0, tB = 0, n = 0, gt = 0;
  let sA = 0, sB = 0;
  for (const x of inputs) {
    const im = { width: S, height: S, data: x.front };
    const t0 = performance.now();
    const a = await pipe.generate(im, { steps: 50, guidanceScale: 3, seed: 4 });
    const t1 = performance.now();
    const b = await pipeInt8.generate(im, { steps: 50, guidanceScale: 3, seed: 4 });
    sA += (t1 - t0) / 1000;
    sB += (performance.now() - t1) / 1000;
    const f = (r: typeof a) => r.images.map((v) => Float32Array.from(v.data, (q) => q / 255));
    const planar = (hwc: Float32Array) => {
      const out = new Float32Array(hwc.length);
      for (let i = 0; i < S * S; i++) for (let c = 0; c < 3; c++) out[c * S * S + i] = hwc[3 * i + c]!;
      return out;
    };
    const fa = f(a).map(planar), fb = f(b).map(planar);
    for (let v = 0; v < 6; v++) pv += psnr(fb[v]!, fa[v]!) / 6;
    if (x.truth) {
      for (let v = 1; v < 6; v++) {
        tA += psnr(fa[v]!, x.truth[v]!) / 5;
        tB += psnr(fb[v]!, x.truth[v]!) / 5;
      }
      gt++;
    }
    n++;
  }
  yield { name: `${name} DDIM-50 views int8 vs fp32, PSNR`, value: pv / n, unit: 'dB',
    note: `${n} inputs; sampling is chaotic, so small per-step differences grow (the score against truth is the ` +
      'test)' };
  yield { name: `${name} DDIM-50 sampling: int8 time`, value: sB / n, unit: 's', baseline: sA / n,
    baselineName: 'fp32' };
  if (gt) {
    yield { name: `${name} DDIM-50 novel views vs truth, PSNR (int8)`, value: tB / gt, unit: 'dB', baseline: tA / gt,
      baselineName: 'fp32', note: `${gt} held-out heads` };
  }
}

export const run: BenchRun = async function* (args) {
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
  const official = args.includes('--official');
  const data = flag(args, '--data', 'data/demo');
  const heads = Number(flag(args, '--heads', '6'));
  const demo = await resolveWeights({ model: 'demo' });
  const heldDir = join(data, 'heldout/mvdiffusion');
  const held = existsSync(heldDir) ? samples(heldDir).slice(0, heads) : [];
  if (!only || only === 'gslrm') {
    const tinyCfg = loadGslrmConfig(join(GOLDEN, 'gslrm-tiny/config.yaml'));
    const tiny: GslrmModel = {
      config: tinyCfg, weights: await loadGslrmWeights(join(GOLDEN, 'gslrm-tiny/ckpt_0000000000000042.pt'), tinyCfg),
    };
    const smooth = (S: number, v: number) => Float32Array.from({ length: v * 3 * S * S }, (_, i) =>
      0.5 + 0.4 * Math.sin(i / 37 + Math.cos(i / 211)));
    yield* gslrmPart('golden tiny', tiny, smooth(32, 4), 4);
    const dcfg = loadGslrmConfig(demo.gslrmConfig);
    const dm: GslrmModel = { config: dcfg, weights: await loadGslrmWeights(demo.gslrmCheckpoint, dcfg) };
    const S = dcfg.image_tokenizer.image_size;
    if (held[0]) {
      const rgb = new Float32Array(6 * 3 * S * S);
      for (let v = 0; v < 6; v++) rgb.set(await view(join(held[0], cam(v)), S), v * 3 * S * S);
      yield* gslrmPart('demo (true views)', dm, rgb, 6);
    }
    if (official) {
      const tokenizer = { ...OFFICIAL_GSLRM_CONFIG.image_tokenizer, image_size: 256 };
      const cfg: GslrmConfig = { ...OFFICIAL_GSLRM_CONFIG, image_tokenizer: tokenizer };
      yield* gslrmPart('official shapes (random weights)', { config: cfg, weights: randomGslrmWeights(cfg, 1) },
        smooth(256, 4), 4, 1);
    }
  }
  if (!only || only === 'diffusion') {
    const embeds = join(demo.root, 'mvdiffusion/clr_embeds.pt');
    const load = (int8: boolean) =>
      MvDiffusionPipeline.load(demo.pipeckpts, { promptEmbeds: embeds, threads: 2, int8 });
    const [a, b] = [await load(false), await load(true)];
    try {
      const S = a.imageSize;
      const inputs = await Promise.all(held.map(async (d) => {
        const truth = await Promise.all([...Array(6).keys()].map((v) => view(join(d, cam(v)), S)));
        const front = new Uint8Array(3 * S * S);
        for (let i = 0; i < S * S; i++) {
          for (let c = 0; c < 3; c++) front[3 * i + c] = Math.round(255 * truth[0]![c * S * S + i]!);
        }
        return { front, truth };
      }));
      if (inputs.length) yield* diffusionPart('demo pipeline', a, b, inputs);
    } finally {
      await a.close();
      await b.close();
    }
    if (official) yield* officialDiffusion();
  }
  if (only === 'official') yield* officialDiffusion();
};

/** A pipeline of the official shapes (UNet 870 M, CLIP ViT-H 632 M, VAE 84 M; random weights) at 512². */
async function* officialDiffusion(): AsyncGenerator<Figure> {
  const root = mkdtempSync(join(tmpdir(), 'bench-int8-'));
  try {
    const { writeOfficialShapedPipeline } = await import('./train-mouse.ts');
    const dir = await writeOfficialShapedPipeline(root, 512);
    let s = 7;
    const data = Uint8Array.from({ length: 3 * 512 * 512 }, () => ((s = (s * 16807) % 2147483647) % 256));
    const img = { width: 512, height: 512, data };
    // One pipeline at a time (two official-size pipelines and their sessions do not fit in 24 GiB together); one
    // step only (50 official-size steps take most of an hour per sampler on this CPU).
    const measure = async (int8: boolean) => {
      const p = await MvDiffusionPipeline.load(dir, { promptEmbeds: join(dir, 'clr_embeds.pt'), threads: 2, int8 });
      try {
        const emb = await timed(() => p.imageEmbedding(img), 1);
        let ev: StepEvent | null = null;
        const one = () => p.generate(img, { steps: 1, guidanceScale: 3, eta: 0, seed: 4 }, (x) => (ev = x));
        const step = await timed(one, 1);
        const dec = await timed(() => p.decode(ev!.latents), 1);
        return { emb, step, unet: ev!.unetOutput, latents: ev!.latents, dec };
      } finally {
        await p.close();
      }
    };
    const a = await measure(false);
    const b = await measure(true);
    const tag = 'official shapes';
    yield* pair(`${tag} image encoder`, a.emb, b.emb,
      { name: `${tag} image encoder: embedding int8 vs fp32, SNR`, value: snr(a.emb.value, b.emb.value), unit: 'dB' });
    yield* pair(`${tag} one step (encoders + UNet + decode)`, a.step, b.step,
      { name: `${tag} UNet output (CFG batch 12 at 64²) int8 vs fp32, SNR`, value: snr(a.unet, b.unet), unit: 'dB' });
    // Each decodes its own latents; the fp32 and int8 latents differ only through the UNet step above.
    yield { name: `${tag} VAE decode (6 views): int8 time`, value: b.dec.s, unit: 's', baseline: a.dec.s,
      baselineName: 'fp32' };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** One BENCHMARKS.md section per part, so the parts' runs keep each other's figures. */
export function section(args: string[]): string {
  const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : null;
  return `int8${only ? `: ${only}` : ''}${args.includes('--official') ? ' (with official shapes)' : ''}`;
}
