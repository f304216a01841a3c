/**
 * `npm run bench -- infer [--stages a,b,…] [--frames 30] [--no-unet]`: per-stage wall time and peak
 * RSS of `facelift infer` at the official model sizes on this CPU, with random weights of the official shapes
 * (the official checkpoints are not available here). Each stage runs in its own child process, so its peak RSS is
 * its own (weights + activations + runtime).
 *
 * Extrapolated, and said so in the notes: the sampler's steps — the default's 20 and DDIM's 50 — from one
 * measured UNet step b12 (a multistep step costs what a DDIM step does), the 6 VAE decodes
 * (one is measured), the 24 GS-LRM layers (1- and 2-layer networks are measured; per-layer = the difference), the
 * 150-frame turntable (`--frames` frames are rendered). Baselines: PyTorch 2.13 CPU fp32 on the same machine for the
 * same stage as the reference runs it (research/perf-anchors.md; CLIP and VAE encode there take 6 copies of the
 * image, this port takes one).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SCHEDULER, DEFAULT_STEPS } from '../src/diffusion/pipeline.ts';
import type { BenchRun, Figure } from './figure.ts';

const STAGES = ['preprocess', 'clip', 'vae-encode', 'unet-step', 'vae-decode', 'gslrm-1', 'gslrm-2', 'splat'] as const;
type StageName = (typeof STAGES)[number];
const THREADS = 2;
const GiB = 2 ** 30;

interface StageReport {
  stage: StageName;
  /** Measured seconds of the timed part. */
  seconds: number;
  /** Seconds of setup not in `seconds` (session creation, weights). */
  setup: number;
  maxRssBytes: number;
  /** CPU seconds of the timed part (to the end of the stage), all threads. */
  cpuSeconds: number;
  extra?: Record<string, number | string>;
}

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

/** Deterministic values of a plausible scale: 1-D "weight" (norm scales) 1, 1-D biases 0, else ±1/√fan-in. */
function randomParams(specs: ReadonlyArray<{ name: string; shape: readonly number[] }>, seed = 1): Map<string, Float32Array> {
  let x = seed >>> 0 || 1;
  const out = new Map<string, Float32Array>();
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    if (s.shape.length === 1) {
      if (/weight$|^mean$|^std$/.test(s.name)) a.fill(1);
    } else {
      const fanIn = s.shape.slice(1).reduce((p, d) => p * d, 1) || 1;
      const r = 1 / Math.sqrt(fanIn);
      for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; a[i] = (x / 2 ** 32 * 2 - 1) * r; }
    }
    out.set(s.name, a);
  }
  return out;
}

const now = () => performance.now() / 1000;
/** CPU time (all threads of the process: ORT's, the render workers') from the start of the timed part. */
let cpuMark: NodeJS.CpuUsage | undefined;
function startTimed(): number {
  cpuMark = process.cpuUsage();
  return now();
}

async function runStage(stage: StageName, args: string[]): Promise<Omit<StageReport, 'maxRssBytes' | 'cpuSeconds'>> {
  const C = await import('../src/core/index.ts');
  const { paramSpecs } = await import('../src/diffusion/params.ts');
  const official = await import('../src/diffusion/official.ts');
  const t0 = now();
  const timed = async (build: (g: InstanceType<typeof C.Graph>) => Record<string, InstanceType<typeof C.Tensor>>, specs: Array<{ name: string; shape: readonly number[] }>, feeds: Record<string, Float32Array>) => {
    const g = new C.Graph(stage);
    const outputs = build(g);
    const s = await C.Session.create(outputs, { params: randomParams(specs), threads: THREADS });
    const setup = now() - t0;
    const t = startTimed();
    await s.run(feeds);
    const seconds = now() - t;
    await s.release();
    return { setup, seconds };
  };
  const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);

  switch (stage) {
    case 'preprocess': {
      const { preprocess } = await import('../src/preprocess/index.ts');
      const file = fileURLToPath(new URL('../examples/000.png', import.meta.url));
      const cold = await preprocess(file, { autoCrop: true });
      const t = startTimed();
      const warm = await preprocess(file, { autoCrop: true });
      return { stage, seconds: now() - t, setup: cold.timings.totalMs / 1000 - warm.timings.totalMs / 1000, extra: { detectMs: warm.timings.detectMs, matting: 'none (MODNet not available offline)' } };
    }
    case 'clip': {
      const { ClipVision } = await import('../src/diffusion/clip.ts');
      const { declareClipVisionParams } = await import('../src/diffusion/clip-params.ts');
      const cfg = official.OFFICIAL_CLIP_VISION_CONFIG;
      const r = await timed((g) => ({ e: new ClipVision(g, cfg).forward(g.input('pixels', [1, 3, 224, 224])) }),
        paramSpecs((d) => declareClipVisionParams(d, cfg)), { pixels: rand(3 * 224 * 224) });
      return { stage, ...r };
    }
    case 'vae-encode': {
      const { VaeEncoder } = await import('../src/diffusion/vae.ts');
      const { declareVaeParams } = await import('../src/diffusion/vae-params.ts');
      const cfg = official.OFFICIAL_VAE_CONFIG;
      const r = await timed((g) => ({ m: new VaeEncoder(g, cfg).forward(g.input('x', [1, 3, 512, 512])).mean }),
        paramSpecs((d) => declareVaeParams(d, cfg)).filter((p) => !p.name.startsWith('decoder.') && !p.name.startsWith('post_quant_conv.')), { x: rand(3 * 512 * 512) });
      return { stage, ...r };
    }
    case 'vae-decode': {
      const { VaeDecoder } = await import('../src/diffusion/vae.ts');
      const { declareVaeParams } = await import('../src/diffusion/vae-params.ts');
      const cfg = official.OFFICIAL_VAE_CONFIG;
      const r = await timed((g) => ({ y: new VaeDecoder(g, cfg).forward(g.input('z', [1, 4, 64, 64])) }),
        paramSpecs((d) => declareVaeParams(d, cfg)).filter((p) => !p.name.startsWith('encoder.') && !p.name.startsWith('quant_conv.')), { z: rand(4 * 64 * 64) });
      return { stage, ...r };
    }
    case 'unet-step': {
      const { MultiViewUNet, unetInputs } = await import('../src/diffusion/unet.ts');
      const { declareUNetParams } = await import('../src/diffusion/unet-params.ts');
      const { timestepEmbedding } = await import('../src/diffusion/image-conditioning.ts');
      const c = official.OFFICIAL_UNET_CONFIG;
      const N = 12;
      const specs = paramSpecs((d) => declareUNetParams(d, c));
      const params = randomParams(specs);
      const g = new C.Graph('unet');
      const s = await C.Session.create({ y: new MultiViewUNet(g, c).forward(unetInputs(g, c, N, 64, 77)) }, { params, threads: THREADS });
      params.clear();
      const setup = now() - t0;
      const t = startTimed();
      await s.run({
        sample: rand(N * 8 * 64 * 64),
        timestep_embedding: timestepEmbedding(new Array(N).fill(981), c.blockOutChannels[0]!, { flipSinToCos: true, downscaleFreqShift: 0 }),
        class_labels: rand(N * 2048),
        encoder_hidden_states: rand(N * 77 * 1024),
      });
      const seconds = now() - t;
      await s.release();
      return { stage, seconds, setup };
    }
    case 'gslrm-1':
    case 'gslrm-2': {
      const { OFFICIAL_GSLRM_CONFIG } = await import('../src/lrm/config.ts');
      const { randomGslrmWeights } = await import('../src/lrm/weights.ts');
      const { reconstruct } = await import('../src/lrm/reconstruct.ts');
      const { faceliftViews } = await import('../src/cameras/rigs.ts');
      const layers = stage === 'gslrm-1' ? 1 : 2;
      const config = { ...OFFICIAL_GSLRM_CONFIG, transformer: { ...OFFICIAL_GSLRM_CONFIG.transformer, n_layer: layers } };
      const weights = randomGslrmWeights(config, 1);
      const rgb = Float32Array.from({ length: 6 * 3 * 512 * 512 }, (_, i) => 0.5 + 0.4 * Math.sin(i * 0.001));
      const setup = now() - t0;
      const t = startTimed();
      const r = await reconstruct({ views: 6, height: 512, width: 512, rgb }, faceliftViews(512), { config, weights }, { threads: THREADS });
      return { stage, seconds: now() - t, setup, extra: { gaussians: r.gaussians.count } };
    }
    case 'splat': {
      const frames = flag(args, '--frames', 30);
      const { allocGaussians } = await import('../src/splat/gaussians.ts');
      const { SplatRenderer } = await import('../src/splat/renderer.ts');
      const { filterGaussians } = await import('../src/splat/filters.ts');
      const { writePly } = await import('../src/splat/ply.ts');
      const { renderTurntable } = await import('../src/splat/turntable.ts');
      const { faceliftViews } = await import('../src/cameras/rigs.ts');
      // A scene of the official size (2 + 6·512² Gaussians) shaped like a pixel-aligned head: small splats on a
      // head-sized ellipsoid, mostly opaque; what the screen-space cost depends on.
      const n = 2 + 6 * 512 * 512;
      const g = allocGaussians(n, 0);
      let x = 7;
      const u = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x / 2 ** 32; };
      for (let i = 0; i < n; i++) {
        const th = Math.acos(2 * u() - 1), ph = 2 * Math.PI * u(), r = 1 + 0.03 * (u() - 0.5);
        g.means.set([0.42 * r * Math.sin(th) * Math.cos(ph), 0.48 * r * Math.sin(th) * Math.sin(ph), 0.55 * r * Math.cos(th)], 3 * i);
        g.scales.set([Math.log(0.004 + 0.004 * u()), Math.log(0.004 + 0.004 * u()), Math.log(0.002)], 3 * i);
        g.rotations.set([1, u() - 0.5, u() - 0.5, u() - 0.5], 4 * i);
        g.opacities[i] = 4 * u() - 1;
        g.sh.set([u() - 0.5, u() - 0.5, u() - 0.5], 3 * i);
      }
      const renderer = await SplatRenderer.create({ threads: THREADS });
      const dir = mkdtempSync(join(tmpdir(), 'bench-infer-'));
      try {
        const setup = now() - t0;
        let t = startTimed();
        await renderer.setScene(g);
        for (const cam of faceliftViews(512)) await renderer.render(cam);
        const render6 = now() - t;
        t = now();
        const { gaussians: kept } = filterGaussians(g);
        const filter = now() - t;
        t = now();
        await writePly(join(dir, 'g.ply'), kept, 'facelift');
        const ply = now() - t;
        t = now();
        await renderTurntable(kept, { out: join(dir, 't.mp4'), frames, resolution: 512, renderer });
        const turntable = now() - t;
        return { stage, seconds: render6 + filter + ply + turntable, setup, extra: { render6, filter, ply, turntable, frames, kept: kept.count } };
      } finally {
        await renderer.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
}

function memAvailableGiB(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) / 2 ** 20 : Infinity;
}

function child(stage: StageName, args: string[]): StageReport {
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--infer-stage', stage, ...args], {
    encoding: 'utf8', maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (r.status !== 0 || !line) throw new Error(`bench infer: stage ${stage} failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  return JSON.parse(line) as StageReport;
}

// PyTorch 2.13 CPU fp32, 2 threads, same machine (research/perf-anchors.md, warm runs, default malloc).
const TORCH = { clip6: 6.4, vaeEncode6: 33.5, unetStep: 49.8, vaeDecode6: 61.5, gslrm: 376.9, total: 2439 };

/** `--model demo`: its own BENCHMARKS.md section. */
export function section(args: string[]): string {
  return args.includes('--model') && args[args.indexOf('--model') + 1] === 'demo' ? 'infer (demo models)' : 'infer';
}

/**
 * `--model demo`: one bundled example through the whole demo pipeline as a user runs it (`facelift infer --model
 * demo`, a fresh process: models loaded, every output written), timed end to end and per stage, with its peak RSS.
 */
async function* demoRun(args: string[]): AsyncGenerator<Figure> {
  const repeats = Number(args[args.indexOf('--repeats') + 1] ?? 1) || 1;
  const root = mkdtempSync(join(tmpdir(), 'bench-infer-demo-'));
  const bin = fileURLToPath(new URL('../bin/facelift.js', import.meta.url));
  const input = join(root, 'in');
  mkdirSync(input);
  copyFileSync(fileURLToPath(new URL('../examples/000.png', import.meta.url)), join(input, '000.png'));
  try {
    const walls: number[] = [];
    type Result = {
      timings: Record<string, number>; cpuSeconds: Record<string, number>; imageSize: number;
      settings: { scheduler: string; steps: number };
    };
    let last: Result | undefined;
    let rss = 0;
    for (let k = 0; k < repeats; k++) {
      const t0 = performance.now();
      const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, bin, 'infer', '--model', 'demo', '-i', input, '-o', join(root, `out${k}`), '--json'],
        { encoding: 'utf8', env: { ...process.env, HF_HUB_OFFLINE: '1' } });
      walls.push((performance.now() - t0) / 1000);
      if (r.status !== 0) throw new Error(`facelift infer --model demo failed: ${r.stderr.slice(-2000)}`);
      last = JSON.parse(r.stdout.trim().split('\n')[0]!) as Result;
      rss = Math.max(rss, Number(r.stderr.trim().split('\n').at(-1)) * 1024);
    }
    const sampler = `${last!.settings.steps} ${last!.settings.scheduler} steps`;
    const note = `examples/000.png, ${last!.imageSize}² views, ${sampler}, 150-frame turntable; ${repeats} run(s), min–max ` +
      `${Math.min(...walls).toFixed(1)}–${Math.max(...walls).toFixed(1)} s; load avg ${loadavg()[0]!.toFixed(1)}`;
    yield { name: 'one example, whole demo pipeline (new process)', value: Math.min(...walls), unit: 's', note };
    const cores = availableParallelism();
    for (const [stage, ms] of Object.entries(last!.timings)) {
      const cpu = last!.cpuSeconds[stage];
      // Busy share of the machine: CPU seconds of every thread over wall seconds × cores.
      const share = cpu === undefined ? 0 : (100 * cpu) / ((ms / 1000) * cores);
      const busy = cpu === undefined || ms < 1 ? '' : `CPU ${cpu.toFixed(2)} s: ${share.toFixed(0)} % of ${cores} cores`;
      yield { name: `  ${stage}`, value: ms / 1000, unit: 's', ...(busy ? { note: busy } : {}) };
    }
    yield { name: 'peak RSS', value: rss / GiB, unit: 'GiB' };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export const run: BenchRun = async function* (args) {
  if (section(args) !== 'infer') {
    yield* demoRun(args);
    return;
  }
  const only = (() => { const i = args.indexOf('--stages'); return i >= 0 ? new Set(args[i + 1]!.split(',')) : null; })();
  const want = (s: StageName) => (only ? only.has(s) : true) && !(s === 'unet-step' && args.includes('--no-unet'));
  const rep = new Map<StageName, StageReport>();
  const rss = (r: StageReport): Figure => ({ name: `${r.stage}: peak RSS`, value: r.maxRssBytes / GiB, unit: 'GiB' });
  for (const s of STAGES) {
    if (!want(s)) continue;
    if (s === 'unet-step' && memAvailableGiB() < 16) {
      yield { name: 'unet-step: skipped', value: memAvailableGiB(), unit: 'GiB', note: 'less than 16 GiB available (the fp32 step needs ~15 GiB); run on a quieter machine (bench unet --fp16-weights measures the fp16-weight variant)' };
      continue;
    }
    const load0 = loadavg()[0]!;
    const r = child(s, args);
    rep.set(s, r);
    // Other work on this shared machine inflates the times; say how busy it was.
    const busy = `load avg ${load0.toFixed(1)}→${loadavg()[0]!.toFixed(1)} on ${cpus().length} cores; timed part used ${r.cpuSeconds.toFixed(1)} CPU-s (${(r.cpuSeconds / THREADS).toFixed(1)} s at ${THREADS} busy threads)`;
    const setup = `setup (random weights + session) ${r.setup.toFixed(1)} s not included`;
    switch (s) {
      case 'preprocess':
        yield { name: 'preprocess (decode, SSD detect, crop → 512²)', value: r.seconds, unit: 's', note: `warm; detector load ${r.setup.toFixed(1)} s once per process; matting not included (MODNet not available offline)` };
        break;
      case 'clip':
        yield { name: 'CLIP ViT-H/14 image embedding (1 image)', value: r.seconds, unit: 's', baseline: TORCH.clip6, baselineName: 'PyTorch fp32, 6 copies as the reference', note: setup };
        break;
      case 'vae-encode':
        yield { name: 'VAE encode 512² (1 image)', value: r.seconds, unit: 's', baseline: TORCH.vaeEncode6, baselineName: 'PyTorch fp32, 6 copies as the reference', note: setup };
        break;
      case 'unet-step':
        yield { name: 'UNet step b12 (6 views × CFG)', value: r.seconds, unit: 's', baseline: TORCH.unetStep, baselineName: 'PyTorch fp32 warm step', note: `first run after session creation; ${setup}` };
        yield { name: 'diffusion: 50 DDIM steps (extrapolated ×50)', value: (50 * r.seconds) / 60, unit: 'min', baseline: (50 * TORCH.unetStep) / 60, baselineName: 'PyTorch fp32 ×50', higherIsBetter: false };
        for (const sch of ['dpmpp2m', 'unipc'] as const) {
          const n = DEFAULT_STEPS[sch];
          yield { name: `diffusion: ${n} ${sch === 'dpmpp2m' ? 'DPM-Solver++ (2M)' : 'UniPC'} steps (extrapolated ×${n})`,
            value: (n * r.seconds) / 60, unit: 'min', baseline: (50 * TORCH.unetStep) / 60, baselineName: 'PyTorch fp32 DDIM ×50', higherIsBetter: false };
        }
        break;
      case 'vae-decode':
        yield { name: 'VAE decode 6 views (1 measured ×6)', value: 6 * r.seconds, unit: 's', baseline: TORCH.vaeDecode6, baselineName: 'PyTorch fp32 [6] batch', note: setup };
        break;
      case 'gslrm-1':
        yield { name: 'GS-LRM 1 layer (embed + 1 layer + heads)', value: r.seconds, unit: 's', note: `${r.extra?.gaussians} Gaussians` };
        break;
      case 'gslrm-2': {
        const one = rep.get('gslrm-1');
        if (one) {
          const perLayer = r.seconds - one.seconds;
          yield { name: 'GS-LRM 24 layers (extrapolated)', value: one.seconds + 23 * perLayer, unit: 's', baseline: TORCH.gslrm, baselineName: 'PyTorch fp32 24 layers',
            note: `per layer ${perLayer.toFixed(1)} s = t(2 layers) − t(1 layer)` };
        }
        break;
      }
      case 'splat': {
        const e = r.extra as Record<string, number>;
        yield { name: 'render 6 views 512² (1,572,866 Gaussians)', value: e.render6!, unit: 's', note: 'synthetic head-shaped scene of the official Gaussian count; includes scene upload' };
        yield { name: 'filter + PLY write', value: e.filter! + e.ply!, unit: 's', note: `${e.kept} Gaussians kept` };
        yield { name: 'turntable 150 frames 512² → MP4 (extrapolated)', value: (e.turntable! * 150) / e.frames!, unit: 's', note: `${e.frames} frames measured ×${(150 / e.frames!).toFixed(1)}` };
        break;
      }
    }
    yield { ...rss(r), note: busy };
  }
  // The whole image, from the measured/extrapolated parts (load time of the real weights not included), for the
  // default sampler and FaceLift's DDIM-50: a multistep step costs what a DDIM step does (one UNet call on the CFG
  // batch; the solver's own arithmetic on the latents is negligible), so the modes differ in the step count only.
  const get = (s: StageName) => rep.get(s)?.seconds;
  const sp = rep.get('splat')?.extra as Record<string, number> | undefined;
  const splatSeconds = sp ? sp.render6! + sp.filter! + sp.ply! + (sp.turntable! * 150) / sp.frames! : undefined;
  const g1 = get('gslrm-1'), g2 = get('gslrm-2');
  const wall = (steps: number): number | undefined => sum([get('preprocess'), get('clip'), get('vae-encode'),
    times(steps, get('unet-step')), times(6, get('vae-decode')),
    g1 !== undefined && g2 !== undefined ? g1 + 23 * (g2 - g1) : undefined, splatSeconds]);
  // The same sum from CPU time ÷ threads: what the stages would take with the 2 cores to themselves, a fairer figure
  // on a shared machine (slightly optimistic where a stage does not keep both threads busy).
  const idle = (st: StageName, k = 1) => { const r = rep.get(st); return r ? (k * r.cpuSeconds) / THREADS : undefined; };
  const c1 = rep.get('gslrm-1')?.cpuSeconds, c2 = rep.get('gslrm-2')?.cpuSeconds;
  const spr = rep.get('splat');
  const idleWall = (steps: number): number | undefined => sum([idle('preprocess'), idle('clip'), idle('vae-encode'),
    idle('unet-step', steps), idle('vae-decode', 6), c1 !== undefined && c2 !== undefined ? (c1 + 23 * (c2 - c1)) / THREADS : undefined,
    spr && splatSeconds !== undefined ? (spr.cpuSeconds / THREADS) * (splatSeconds / spr.seconds) : undefined]);
  const torch = { baseline: TORCH.total / 60, baselineName: 'PyTorch fp32 DDIM-50 compute-only estimate (perf-anchors)', higherIsBetter: false };
  const modes = [
    { label: `default: fp32, DPM-Solver++ (2M) × ${DEFAULT_STEPS[DEFAULT_SCHEDULER]}`, steps: DEFAULT_STEPS[DEFAULT_SCHEDULER] },
    { label: "reference: fp32, FaceLift's DDIM × 50", steps: 50 },
  ];
  for (const m of modes) {
    const t = idleWall(m.steps);
    if (t !== undefined) {
      yield { name: `portrait, ${m.label}, from CPU time ÷ 2 threads`, value: t / 60, unit: 'min', ...torch,
        note: 'idle-machine estimate: per-stage CPU seconds / 2, extrapolated as above' };
    }
  }
  for (const m of modes) {
    const t = wall(m.steps);
    if (t !== undefined) {
      yield { name: `portrait, ${m.label} (sum of stages)`, value: t / 60, unit: 'min', ...torch,
        note: 'extrapolated as above; peak RSS of the whole run ≈ the largest stage plus the other models kept loaded' };
    }
  }
};

function times(k: number, x: number | undefined): number | undefined {
  return x === undefined ? undefined : k * x;
}

function sum(parts: Array<number | undefined>): number | undefined {
  return parts.every((p) => p !== undefined) ? parts.reduce((a: number, b) => a + b!, 0) : undefined;
}

// Child mode: one stage, one JSON line on stdout.
if (process.argv[2] === '--infer-stage') {
  const stage = process.argv[3] as StageName;
  const r = await runStage(stage, process.argv.slice(4));
  const cpu = process.cpuUsage(cpuMark);
  process.stdout.write(`${JSON.stringify({ ...r, cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
  process.exit(0);
}
