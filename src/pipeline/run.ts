/**
 * One portrait → one result folder (spec pipeline.md, whole): preprocess → 6 views (multi-view diffusion) →
 * GS-LRM → filters → gaussians.ply, output.png (renders of the unfiltered Gaussians at the 6 input cameras),
 * turntable.mp4, plus input.png, multiview.png and result.json.
 *
 * Everything is written into a hidden sibling folder first and renamed into place only when the image completed,
 * so `OUT/<name>/` either holds a complete result or nothing new.
 *
 * Seeds: the sampler's noise comes from Philox4x32 seeded with `seed` afresh for every image (as FaceLift's gradio
 * app does per request). `inference.py` seeds once before its loop, so there image k's noise depends on the
 * images sorted before it; here an image's result depends only on the image, the weights and the settings.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { faceliftViews } from '../cameras/rigs.ts';
import { DEFAULT_SCHEDULER, DEFAULT_STEPS, SCHEDULERS, type SampleResult, type Scheduler } from '../diffusion/pipeline.ts';
import { reconstruct } from '../lrm/reconstruct.ts';
import { preprocess, type PreprocessResult } from '../preprocess/index.ts';
import { resizeRaw } from '../preprocess/image.ts';
import type { GaussianSet } from '../splat/gaussians.ts';
import { UserError } from '../util/errors.ts';
import { StageClock, type ImageStage, type ProgressListener } from './events.ts';
import { hconcat, planarToImage, writePng, type RawImage } from '../io/image.ts';
import { FACELIFT_FILTERS, filterGaussians, type FilterOptions, type FilterReport } from '../splat/filters.ts';
import { writePly } from '../splat/ply.ts';
import { renderTurntable } from '../splat/turntable.ts';
import type { FaceliftModels } from './models.ts';
import { softwareVersions } from './versions.ts';

export interface InferenceSettings {
  /** Face detection + similarity crop (default true); false: matting + resize. */
  autoCrop?: boolean;
  /** Seed of the sampler's noise, applied afresh to every image (default 4). */
  seed?: number;
  /** Classifier-free guidance scale (default 3). */
  guidanceScale?: number;
  /** Sampling steps (default: the sampler's, `DEFAULT_STEPS`). */
  steps?: number;
  /**
   * The sampler (default DPM-Solver++ (2M), a deterministic multistep solver; `ddim` is FaceLift's, at 50 steps).
   */
  scheduler?: Scheduler;
  /** DDIM η (default 1, as FaceLift). */
  eta?: number;
  /** Turntable frames (default 150) and frame rate (default 30). */
  turntableFrames?: number;
  fps?: number;
  /** Gaussian filters (default: inference.py's). */
  filter?: FilterOptions;
}

export interface InferenceOptions extends InferenceSettings {
  models: FaceliftModels;
  /** The result folder (`OUT/<name>`); replaced atomically when the image completes. */
  outDir: string;
  /** Cancels the run (checked at every stage and diffusion step); nothing is written then. */
  signal?: AbortSignal;
}

export const OUTPUT_FILES = ['input.png', 'multiview.png', 'gaussians.ply', 'output.png', 'turntable.mp4', 'result.json'] as const;

export interface InferenceResult {
  input: string;
  outDir: string;
  files: Record<(typeof OUTPUT_FILES)[number], string>;
  settings: Required<Omit<InferenceSettings, 'filter'>> & { filter: FilterOptions };
  seed: number;
  /** Milliseconds per stage, and in total. */
  timings: Record<ImageStage, number> & { total: number };
  /**
   * CPU seconds per stage, all threads of the process: divided by the stage's wall time and the cores, how busy it
   * kept the machine.
   */
  cpuSeconds: Partial<Record<ImageStage, number>>;
  gaussians: { raw: number; filtered: number; removed: FilterReport['removed'] };
  preprocess: {
    usedFallback: boolean;
    fallbackReason?: string;
    matting: PreprocessResult['matting'];
    faceBox?: PreprocessResult['faceBox'];
    source: PreprocessResult['source'];
  };
  imageSize: number;
  /** Whose models made this: FaceLift's ('official' layout) or facelift-ts's shipped demo models. */
  model: 'official' | 'demo';
  /** Whether the linear layers ran in int8 (`--int8`). */
  int8: boolean;
  weights: { root: string; pipeckpts: string; gslrmCheckpoint: string; gslrmConfig: string; promptEmbeds: string; mattingModel?: string };
  versions: Record<string, string>;
}

function settingsOf(s: InferenceSettings): InferenceResult['settings'] {
  const out = {
    autoCrop: s.autoCrop ?? true,
    seed: s.seed ?? 4,
    guidanceScale: s.guidanceScale ?? 3,
    steps: s.steps ?? DEFAULT_STEPS[s.scheduler ?? DEFAULT_SCHEDULER],
    scheduler: s.scheduler ?? DEFAULT_SCHEDULER,
    eta: s.eta ?? 1,
    turntableFrames: s.turntableFrames ?? 150,
    fps: s.fps ?? 30,
    filter: s.filter ?? FACELIFT_FILTERS,
  };
  if (!Number.isSafeInteger(out.seed) || out.seed < 0) throw new UserError(`seed must be a non-negative integer, got ${out.seed}`);
  if (!SCHEDULERS.includes(out.scheduler)) {
    throw new UserError(`scheduler must be one of ${SCHEDULERS.join(', ')}, got ${JSON.stringify(out.scheduler)}`);
  }
  if (!Number.isInteger(out.steps) || out.steps < 1 || out.steps > 1000) throw new UserError(`steps must be an integer in 1..1000, got ${out.steps}`);
  if (!Number.isFinite(out.guidanceScale) || out.guidanceScale <= 0) throw new UserError(`guidance scale must be a positive number, got ${out.guidanceScale}`);
  if (!Number.isInteger(out.turntableFrames) || out.turntableFrames < 1) throw new UserError(`turntable frames must be a positive integer, got ${out.turntableFrames}`);
  if (!Number.isFinite(out.fps) || out.fps <= 0) throw new UserError(`fps must be positive, got ${out.fps}`);
  return out;
}

/** Planar [V, 3, S, S] float views in [0, 1] from the sampler's uint8 images. */
function viewsToFloat(images: SampleResult['images']): Float32Array {
  const S = images[0]!.width;
  const hw = S * S;
  const out = new Float32Array(images.length * 3 * hw);
  images.forEach((im, v) => {
    for (let i = 0; i < hw; i++) for (let c = 0; c < 3; c++) out[(v * 3 + c) * hw + i] = im.data[3 * i + c]! / 255;
  });
  return out;
}

/** Calls on the same models run one after the other (they share sessions and the renderer's scene). */
const queues = new WeakMap<FaceliftModels, Promise<unknown>>();

/**
 * Runs the whole pipeline on one image and writes its result folder; see the file comment. Concurrent calls with
 * the same `models` are queued (a web server may call this from several requests).
 */
export function runInference(imagePath: string, opts: InferenceOptions, onProgress?: ProgressListener): Promise<InferenceResult> {
  const prev = queues.get(opts.models) ?? Promise.resolve();
  const run = prev.catch(() => undefined).then(() => runOne(imagePath, opts, onProgress));
  queues.set(opts.models, run.catch(() => undefined));
  return run;
}

async function runOne(imagePath: string, opts: InferenceOptions, onProgress?: ProgressListener): Promise<InferenceResult> {
  const settings = settingsOf(opts);
  const m = opts.models;
  const S = m.imageSize;
  const t0 = performance.now();
  const timings = {} as Record<ImageStage, number>;
  const cpuSeconds: Partial<Record<ImageStage, number>> = {};
  const stage = (name: ImageStage, total: number) => {
    opts.signal?.throwIfAborted();
    return new StageClock(onProgress, name, total, imagePath);
  };

  const parent = dirname(opts.outDir);
  await mkdir(parent, { recursive: true });
  const tmp = join(parent, `.${basename(opts.outDir)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  try {
    // [1–3] load, matte, composite, crop → 512² RGB (input.png).
    let st = stage('preprocess', 1);
    const pre = await preprocess(imagePath, {
      autoCrop: settings.autoCrop,
      ...(m.matter ? { matter: m.matter } : {}),
      ...(m.detector ? { detector: m.detector } : {}),
    });
    await writePng(join(tmp, 'input.png'), pre.image);
    timings.preprocess = st.done();
    cpuSeconds.preprocess = st.cpuSeconds;

    // [4] six views. The official model works at 512², the preprocessed size; smaller test models get a resize.
    const steps = settings.steps;
    // Counts the sampler steps asked for; the VAE decode after the last one ends the stage.
    st = stage('diffusion', steps);
    const cond = pre.image.width === S ? pre.image : await resizeRaw(pre.image, S, S, 'cubic');
    const sampleOpts = {
      steps, scheduler: settings.scheduler, guidanceScale: settings.guidanceScale, eta: settings.eta, seed: settings.seed,
    };
    const label = { ddim: 'DDIM', dpmpp2m: 'DPM-Solver++', unipc: 'UniPC' }[settings.scheduler];
    const sampled = await m.diffusion.generate(cond, sampleOpts,
      (e) => {
        opts.signal?.throwIfAborted();
        st.emit(e.step + 1, `${label} t=${e.timestep}`);
      });
    // Give the UNet's working memory (≈ 10 GB at the official size) back before GS-LRM; sessions are re-created lazily.
    if (m.releaseSessions) await m.diffusion.close();
    await writePng(join(tmp, 'multiview.png'), hconcat(sampled.images.map((im): RawImage => ({ ...im, channels: 3 }))));
    timings.diffusion = st.done();
    cpuSeconds.diffusion = st.cpuSeconds;

    // [5] GS-LRM on the generated views (the generated front view, not the photo) at the fixed cameras.
    const cameras = faceliftViews(S);
    const layers = m.gslrm.config.transformer.n_layer + 1;
    st = stage('reconstruct', layers + 1);
    const rec = await reconstruct({ views: sampled.images.length, height: S, width: S, rgb: viewsToFloat(sampled.images) }, cameras, m.gslrm, {
      ...(m.threads ? { threads: m.threads } : {}),
      ...(m.int8 ? { int8: true } : {}),
      provider: m.device,
      onProgress: (done) => {
        opts.signal?.throwIfAborted();
        st.emit(done + 1, done === 0 ? 'embedding' : `layer ${done}`);
      },
    });
    const raw: GaussianSet = rec.gaussians;
    timings.reconstruct = st.done();
    cpuSeconds.reconstruct = st.cpuSeconds;

    // [6] renders of the unfiltered Gaussians (output.png, as the reference), then the filters.
    st = stage('render', cameras.length);
    await m.renderer.setScene(raw);
    const renders: RawImage[] = [];
    for (const cam of cameras) {
      renders.push(planarToImage((await m.renderer.render(cam)).rgb, S, S));
      st.emit(renders.length);
    }
    await writePng(join(tmp, 'output.png'), hconcat(renders));
    timings.render = st.done();
    cpuSeconds.render = st.cpuSeconds;

    st = stage('filter', 1);
    const { gaussians: filtered, report } = filterGaussians(raw, settings.filter);
    await writePly(join(tmp, 'gaussians.ply'), filtered, 'facelift');
    timings.filter = st.done();
    cpuSeconds.filter = st.cpuSeconds;

    // [7] turntable of the filtered Gaussians, front first, towards the subject's left.
    const frames = settings.turntableFrames;
    st = stage('turntable', frames);
    await renderTurntable(filtered, {
      out: join(tmp, 'turntable.mp4'), frames, fps: settings.fps, resolution: S, renderer: m.renderer,
      onProgress: (done) => st.emit(done),
    });
    timings.turntable = st.done();
    cpuSeconds.turntable = st.cpuSeconds;

    st = stage('write', 1);
    const files = Object.fromEntries(OUTPUT_FILES.map((f) => [f, join(opts.outDir, f)])) as InferenceResult['files'];
    timings.write = 0;
    const result: InferenceResult = {
      input: imagePath,
      outDir: opts.outDir,
      files,
      settings,
      seed: settings.seed,
      timings: { ...timings, total: 0 },
      cpuSeconds,
      gaussians: { raw: raw.count, filtered: filtered.count, removed: report.removed },
      preprocess: {
        usedFallback: pre.usedFallback,
        ...(pre.fallbackReason ? { fallbackReason: pre.fallbackReason } : {}),
        matting: pre.matting,
        ...(pre.faceBox ? { faceBox: pre.faceBox } : {}),
        source: pre.source,
      },
      imageSize: S,
      model: m.model,
      int8: m.int8,
      weights: {
        root: m.weights.root, pipeckpts: m.weights.pipeckpts, gslrmCheckpoint: m.weights.gslrmCheckpoint, gslrmConfig: m.weights.gslrmConfig,
        promptEmbeds: m.promptEmbeds.path ?? 'computed from pipeckpts/text_encoder',
        ...(m.mattingModel ? { mattingModel: m.mattingModel.path } : {}),
      },
      versions: await softwareVersions(),
    };
    timings.write = st.elapsedMs;
    cpuSeconds.write = st.cpuSeconds;
    result.timings = { ...timings, total: performance.now() - t0 };
    await writeFile(join(tmp, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
    await replaceDir(tmp, opts.outDir);
    st.done();
    return result;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Moves a finished folder into place, replacing an older result of the same name. */
async function replaceDir(from: string, to: string): Promise<void> {
  if (!existsSync(to)) {
    await rename(from, to);
    return;
  }
  const old = join(dirname(to), `.${basename(to)}.old-${process.pid}-${randomBytes(4).toString('hex')}`);
  await rename(to, old);
  await rename(from, to);
  await rm(old, { recursive: true, force: true });
}
