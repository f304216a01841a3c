/**
 * `facelift mouse generate`: a (fine-tuned) multi-view diffusion model turns each mouse sample's reference view into
 * six views, written as GS-LRM training samples (spec mouse.md §7, §9 #2). The fork pairs these pictures with
 * cameras they were not taken from — the real rig's, or a 60°/20° generator whose matrices are improper (det −1).
 * Here they get the cameras the pictures are drawn for: FaceLift's six views (elevation 0°, azimuths front, 45°
 * right, right, back, left, 45° left; radius 2.7, FOV 50°; cameras/rigs.ts), which is what the diffusion model's
 * view slots mean when it was trained on FaceLift-layout targets. A model fine-tuned on the rig's own views (the
 * samples of `mouse convert`) draws those instead: `cameras: 'sample'` then writes the source sample's cameras.
 *
 * Each sample folder is written whole (renamed from a `.partial` folder), and folders already complete are kept, so
 * a run stopped part-way continues where it was.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Camera } from '../cameras/camera.ts';
import { formatCameraJson, parseCameraJson } from '../cameras/opencv-json.ts';
import { FACELIFT_VIEWS, faceliftViews } from '../cameras/rigs.ts';
import { pilResize } from '../diffusion/pil-resize.ts';
import { MvDiffusionPipeline, type Scheduler } from '../diffusion/pipeline.ts';
import { encodePng, readImage } from '../io/image.ts';
import { findPromptEmbeds } from '../pipeline/prompt-embeds.ts';
import { UserError, fsReason } from '../util/errors.ts';

export interface GenerateOptions {
  /** A `pipeckpts/` folder (e.g. a `train mvdiffusion` export) or a weights folder holding `mvdiffusion/pipeckpts`. */
  weights: string;
  /** Samples from `mouse convert` / `center-align` (sample_* folders and their list files). */
  inputDir: string;
  outputDir: string;
  /** The view each sample is conditioned on (the MV model's input view; default 0). */
  referenceView?: number;
  /** Which cameras the written views get (see the module comment). */
  cameras?: 'facelift' | 'sample';
  steps?: number;
  scheduler?: Scheduler;
  guidance?: number;
  /** Seed of sample k's noise is seed + k. */
  seed?: number;
  promptEmbeds?: string;
  maxSamples?: number;
  threads?: number;
  cacheDir?: string;
  onProgress?: (done: number, total: number) => void;
  onSkip?: (sample: string, why: string) => void;
}

export interface GenerateResult {
  samples: number;
  /** Samples already complete in the output folder, kept. */
  kept: number;
  skipped: number;
  train: string;
  val: string;
  imageSize: number;
}

/** The diffusion pipeline folder a `--weights` argument names. */
export function pipelineFolder(weights: string): string {
  for (const dir of [weights, join(weights, 'pipeckpts'), join(weights, 'mvdiffusion/pipeckpts')]) {
    if (existsSync(join(dir, 'model_index.json'))) return resolve(dir);
  }
  // The fork fell back to the human model on a mistyped path (spec mouse.md §9 #17): never.
  throw new UserError(`${weights} holds no multi-view diffusion pipeline (a folder with model_index.json, e.g. the ` +
    'pipeckpts/ that `facelift train mvdiffusion` exports, or a weights folder with mvdiffusion/pipeckpts/)');
}

export async function generateMouseSamples(o: GenerateOptions): Promise<GenerateResult> {
  const ref = o.referenceView ?? 0;
  const pipeDir = pipelineFolder(o.weights);
  let names: string[];
  try {
    names = (await readdir(o.inputDir)).filter((n) => n.startsWith('sample_')).sort();
  } catch (e) {
    throw new UserError(`cannot read ${o.inputDir}: ${fsReason(e)}`);
  }
  if (names.length === 0) {
    throw new UserError(`${o.inputDir} has no sample_* folders (run facelift mouse convert first)`);
  }
  if (o.maxSamples) names = names.slice(0, o.maxSamples);
  const validation = await validationNames(o.inputDir);

  // An explicit file; else the one a trained export carries (what its UNet was trained with); else one beside the
  // pipeline in a weights folder; else computed with the pipeline's text encoder.
  const inside = join(pipeDir, 'clr_embeds.pt');
  const promptEmbeds = o.promptEmbeds || !existsSync(inside)
    ? findPromptEmbeds(resolve(pipeDir, '..'), o.promptEmbeds).path
    : inside;
  const pipe = await MvDiffusionPipeline.load(pipeDir, {
    ...(promptEmbeds ? { promptEmbeds } : { cacheDir: o.cacheDir ?? join(o.outputDir, '.cache') }),
    ...(o.threads ? { threads: o.threads } : {}),
  });
  const S = pipe.imageSize;
  await mkdir(o.outputDir, { recursive: true });
  const written: string[] = [];
  let kept = 0, skipped = 0;
  try {
    for (const [k, name] of names.entries()) {
      o.onProgress?.(k, names.length);
      const dst = join(o.outputDir, name);
      if (existsSync(join(dst, 'opencv_cameras.json'))) {
        kept++;
        written.push(resolve(dst));
        continue;
      }
      try {
        const { image, cameras } = await referenceOf(join(o.inputDir, name), ref, S);
        const out = await pipe.generate(image, {
          ...(o.steps ? { steps: o.steps } : {}),
          ...(o.scheduler ? { scheduler: o.scheduler } : {}),
          ...(o.guidance !== undefined ? { guidanceScale: o.guidance } : {}),
          seed: (o.seed ?? 42) + k,
        });
        const cams = o.cameras === 'sample' ? sampleCameras(cameras, ref, S, name) : faceliftViews(S);
        await writeSample(dst, out.images, cams, { source_sample: name, reference_view: ref,
          cameras: o.cameras ?? 'facelift', views: FACELIFT_VIEWS.map((v) => v.name) });
        written.push(resolve(dst));
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        skipped++;
        o.onSkip?.(name, e.message);
      }
    }
  } finally {
    await pipe.close();
  }
  if (written.length === 0) throw new UserError(`no sample of ${o.inputDir} could be read; nothing written`);
  const train = join(o.outputDir, 'data_train.txt'), val = join(o.outputDir, 'data_val.txt');
  const isVal = (p: string) => validation.has(basename(p));
  // Without the input's lists, the last sample validates (as convert splits by time).
  const valList = validation.size ? written.filter(isVal) : written.slice(-1);
  const trainList = written.filter((p) => !valList.includes(p));
  await writeFile(train, trainList.map((l) => `${l}\n`).join(''));
  await writeFile(val, valList.map((l) => `${l}\n`).join(''));
  o.onProgress?.(names.length, names.length);
  return { samples: written.length - kept, kept, skipped, train, val, imageSize: S };
}

/** Names of the samples in the input's validation lists (`*val*.txt`, as convert and center-align write them). */
async function validationNames(dir: string): Promise<Set<string>> {
  const out = new Set<string>();
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.txt') && n.includes('val'))) {
    for (const line of (await readFile(join(dir, f), 'utf8')).split('\n')) {
      if (line.trim()) out.add(basename(line.trim()));
    }
  }
  return out;
}

/** The reference view composited onto white and resized to S (Pillow's LANCZOS, as the fork), with the cameras. */
async function referenceOf(dir: string, ref: number, S: number) {
  const name = basename(dir);
  const text = await readFile(join(dir, 'opencv_cameras.json'), 'utf8').catch((e: unknown) => {
    throw new UserError(`${name}: cannot read opencv_cameras.json: ${fsReason(e)}`);
  });
  const cams = parseCameraJson(text, join(name, 'opencv_cameras.json'));
  const frame = cams.frames[ref];
  if (!frame) {
    throw new UserError(`${name} has ${cams.frames.length} views; --reference_view ${ref} is not one of them`);
  }
  const file = frame.filePath ?? `images/cam_${String(ref).padStart(3, '0')}.png`;
  const img = await readImage(join(dir, file)).catch(() => {
    throw new UserError(`${name}: cannot read ${file} as an image`);
  });
  if (img.width !== img.height) {
    throw new UserError(`${name}/${file} is ${img.width}×${img.height}; views must be square`);
  }
  const n = img.width * img.height;
  const rgb = new Uint8Array(3 * n);
  const ch = img.channels, colours = ch === 4 || ch === 2 ? ch - 1 : ch; // grey(+alpha) or RGB(+alpha)
  for (let p = 0; p < n; p++) {
    const a = colours < ch ? img.data[ch * p + colours]! / 255 : 1;
    for (let c = 0; c < 3; c++) {
      const v = img.data[ch * p + Math.min(c, colours - 1)]!;
      rgb[3 * p + c] = Math.round(v * a + 255 * (1 - a));
    }
  }
  const data = img.width === S ? rgb : pilResize(rgb, img.width, img.height, 3, S, S, 'lanczos');
  return { image: { width: S, height: S, data }, cameras: cams.frames.map((f) => f.camera) };
}

/** The source sample's cameras in view-slot order (slot i shows view (ref + i) mod V), scaled to S. */
function sampleCameras(cams: readonly Camera[], ref: number, S: number, name: string): Camera[] {
  if (cams.length !== FACELIFT_VIEWS.length) {
    throw new UserError(`${name} has ${cams.length} views; --cameras sample needs ${FACELIFT_VIEWS.length}`);
  }
  return cams.map((_, i) => {
    const c = cams[(ref + i) % cams.length]!;
    const s = S / c.width;
    return { ...c, width: S, height: Math.round(c.height * s), fx: c.fx * s, fy: c.fy * s, cx: c.cx * s, cy: c.cy * s };
  });
}

async function writeSample(
  dst: string, images: ReadonlyArray<{ width: number; height: number; data: Uint8Array }>, cams: Camera[],
  extra: Record<string, unknown>,
): Promise<void> {
  const tmp = `${dst}.partial`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'images'), { recursive: true });
  const frames = [];
  for (const [i, img] of images.entries()) {
    const file = `images/cam_${String(i).padStart(3, '0')}.png`;
    await writeFile(join(tmp, file), await encodePng({ ...img, channels: 3 }));
    frames.push({ camera: cams[i]!, filePath: file, extra: {} });
  }
  await writeFile(join(tmp, 'opencv_cameras.json'), formatCameraJson({ id: basename(dst), frames, extra }));
  await rm(dst, { recursive: true, force: true });
  await rename(tmp, dst);
}
