/**
 * `RandomViewDataset` (spec gslrm.md §6): a list file of sample folders, each with `opencv_cameras.json` and its
 * images; per item `num_views` distinct views of which the first `num_input_views` are the inputs (targets are all
 * views, inputs included), with the overlap rule, the background colour, RGBA kept as a 4th channel, resizing to
 * `image_size` with the intrinsics scaled alike. With the mouse fork's `mouse.use_mouse_dataset` (MouseViewDataset,
 * spec mouse.md §8.2): views in their fixed order, the rig turned upright and scaled as one (cameras keep agreeing
 * with the pixels), RGB views masked where not near-white, one brightness/contrast change for all views.
 *
 * Randomness is a pure function of (seed, pass, slot), never of a generator's running state, so a resumed run
 * draws exactly the views an uninterrupted one would.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import type { Camera } from '../../cameras/camera.ts';
import { readCameraFile } from '../../cameras/opencv-json.ts';
import { pilResize } from '../../diffusion/pil-resize.ts';
import { UserError } from '../../util/errors.ts';
import { uprightRig } from '../../mouse/normalize.ts';
import { augmentViews } from '../augment.ts';
import type { BackgroundSpec, MouseDatasetConfig } from './config.ts';
import { streamRng, type StreamRng } from '../rng.ts';

export interface ViewSample {
  /** The sample folder (its name is the uid in logs). */
  dir: string;
  /** Drawn view indices, inputs first. */
  viewIndices: number[];
  /** [V, 3, S, S] in [0, 1], composited onto `background`. */
  rgb: Float32Array;
  /** [V, S, S] alpha in [0, 1] (1 where the image had none). */
  alpha: Float32Array;
  /** Whether the views carried alpha (the reference's 4-channel targets; false with `remove_alpha`). */
  hasAlpha: boolean;
  cameras: Camera[];
  background: [number, number, number];
}

export interface RandomViewOptions {
  imageSize: number;
  numViews: number;
  numInputViews: number;
  maximizeOverlap: boolean;
  background: BackgroundSpec;
  /** Sort the input and the extra indices (the reference does, because its `inference` section is truthy). */
  sortIndices?: boolean;
  /** Fixed view order instead of random draws: views 0..numViews−1 (validation, the fork's mouse data). */
  fixedViews?: boolean;
  /** Fixed input views (in this order), the other numViews − numInputViews drawn from the rest. */
  inputViews?: readonly number[] | null;
  /** Drop the alpha channel after compositing (`remove_alpha`). */
  removeAlpha?: boolean;
  /** The fork's mouse dataset: fixed view order, upright rig, masks for RGB views, augmentation (training only). */
  mouse?: MouseDatasetConfig | null;
}

interface SampleMeta {
  cameras: Camera[];
  files: string[];
}

/** Reads a list file: one sample folder per line (relative lines are taken from the list file's folder). */
export function readSampleList(listPath: string): string[] {
  let text: string;
  try {
    text = readFileSync(listPath, 'utf8');
  } catch (e) {
    throw new UserError(
      `cannot read the dataset list ${listPath}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
  const dirs = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => (isAbsolute(l) ? l : resolve(dirname(listPath), l)));
  if (dirs.length === 0) throw new UserError(`the dataset list ${listPath} names no sample folders`);
  return dirs;
}

export class RandomViewDataset {
  private meta = new Map<string, SampleMeta | Error>();
  /** Samples reported unreadable (each reported once). */
  readonly bad = new Map<string, string>();

  constructor(
    readonly samples: readonly string[],
    readonly opts: RandomViewOptions,
    readonly seed: number,
    private readonly warn: (msg: string) => void = (m) => process.stderr.write(`${m}\n`),
  ) {}

  get length(): number {
    return this.samples.length;
  }

  /**
   * Item `index` for the draw identified by `(pass, slot)`. An unreadable sample is reported and replaced by
   * another one drawn from the same stream; when every sample fails the error says so.
   */
  async get(index: number, pass: number, slot: number): Promise<ViewSample> {
    const rng = streamRng(this.seed, 'item', pass, slot);
    let i = index;
    for (let attempt = 0; attempt < Math.max(8, this.samples.length * 2); attempt++) {
      const dir = this.samples[i]!;
      try {
        return await this.load(dir, rng);
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        if (!this.bad.has(dir)) {
          this.bad.set(dir, e.message);
          this.warn(`skipping sample ${dir}: ${e.message}`);
        }
        if (this.bad.size >= this.samples.length) {
          throw new UserError(
            `no readable sample in the dataset (${this.samples.length} listed; first problem: ${[...this.bad.values()][0]})`,
          );
        }
        i = rng.int(this.samples.length);
      }
    }
    throw new UserError(
      `could not read a sample after many attempts (${this.bad.size} of ${this.samples.length} unreadable)`,
    );
  }

  private async metaOf(dir: string): Promise<SampleMeta> {
    let m = this.meta.get(dir);
    if (!m) {
      try {
        const file = await readCameraFile(join(dir, 'opencv_cameras.json'));
        const files = file.frames.map((f, k) =>
          join(dir, f.filePath ?? `images/cam_${String(k).padStart(3, '0')}.png`),
        );
        m = { cameras: file.frames.map((f) => f.camera), files };
      } catch (e) {
        m = e instanceof Error ? e : new Error(String(e));
      }
      this.meta.set(dir, m);
    }
    if (m instanceof Error) throw m instanceof UserError ? m : new UserError(m.message);
    return m;
  }

  private async load(dir: string, rng: StreamRng): Promise<ViewSample> {
    const meta = await this.metaOf(dir);
    const { numViews, numInputViews, imageSize: S } = this.opts;
    if (meta.cameras.length < numViews)
      throw new UserError(`has ${meta.cameras.length} views, the config asks for ${numViews}`);
    const fixedInputs = this.opts.inputViews ?? null;
    if (fixedInputs && fixedInputs.some((v) => v >= meta.cameras.length)) {
      throw new UserError(`has ${meta.cameras.length} views; input_views asks for view ${Math.max(...fixedInputs)}`);
    }
    const mouse = this.opts.mouse ?? null;
    const cams = mouse?.cameras ? uprightRig(meta.cameras, mouse.cameras) : meta.cameras;
    const viewIndices = this.opts.fixedViews || mouse
      ? [...Array(numViews).keys()]
      : fixedInputs
        ? [...fixedInputs, ...rng.sample([...meta.cameras.keys()].filter((i) => !fixedInputs.includes(i)), numViews - fixedInputs.length)]
        : drawViews(meta.cameras, numViews, numInputViews, this.opts.maximizeOverlap, rng);
    if (!viewIndices)
      throw new UserError(`no ${numViews - numInputViews} views overlap its ${numInputViews} input views`);
    // Fixed inputs keep their order (as the model will see them); the reference sorts drawn indices.
    if ((this.opts.sortIndices ?? true) && !fixedInputs) {
      const a = viewIndices.slice(0, numInputViews).sort((x, y) => x - y);
      const b = viewIndices.slice(numInputViews).sort((x, y) => x - y);
      viewIndices.splice(0, viewIndices.length, ...a, ...b);
    }
    const background = drawBackground(this.opts.background, rng);
    const V = viewIndices.length;
    const rgb = new Float32Array(V * 3 * S * S);
    const alpha = new Float32Array(V * S * S);
    const cameras: Camera[] = [];
    let hasAlpha = false;
    await Promise.all(
      viewIndices.map(async (vi, v) => {
        const cam = cams[vi]!;
        let img = await readView(meta.files[vi]!, S);
        if (img.channels === 3 && mouse?.autoMask) img = withWhiteAsClear(img);
        if (img.width !== cam.width || img.height !== cam.height) {
          throw new UserError(
            `${meta.files[vi]} is ${img.width}×${img.height} but its camera says ${cam.width}×${cam.height}`,
          );
        }
        cameras[v] = scaleCamera(cam, S / img.width);
        if (img.channels === 4) hasAlpha = true;
        composite(
          img.data,
          img.channels,
          S,
          background,
          rgb.subarray(v * 3 * S * S, (v + 1) * 3 * S * S),
          alpha.subarray(v * S * S, (v + 1) * S * S),
        );
      }),
    );
    if (mouse?.augmentation) augmentViews(rgb, mouse.augmentation, rng);
    return { dir, viewIndices, rgb, alpha, hasAlpha: hasAlpha && !this.opts.removeAlpha, cameras, background };
  }
}

/**
 * The reference's view draw: `nIn` distinct views uniformly, then the rest among views whose camera position has
 * a dot product ≥ 0.5 with some input camera's position (unnormalised positions, as the reference: with |p| = 2.7
 * this is ≈ 86°). Returns null when too few candidates exist. Without the overlap rule: `n` distinct views.
 */
export function drawViews(
  cams: readonly Camera[],
  n: number,
  nIn: number,
  overlap: boolean,
  rng: StreamRng,
): number[] | null {
  const all = [...cams.keys()];
  if (!overlap) return rng.sample(all, n);
  const inputs = rng.sample(all, nIn);
  const pos = (c: Camera): [number, number, number] => [c.c2w[3]!, c.c2w[7]!, c.c2w[11]!];
  const candidates = all.filter(
    (i) =>
      !inputs.includes(i) &&
      inputs.some((j) => {
        const a = pos(cams[i]!),
          b = pos(cams[j]!);
        return a[0] * b[0] + a[1] * b[1] + a[2] * b[2] >= 0.5;
      }),
  );
  if (candidates.length < n - nIn) return null;
  return [...inputs, ...rng.sample(candidates, n - nIn)];
}

export function drawBackground(spec: BackgroundSpec, rng: StreamRng): [number, number, number] {
  if (typeof spec === 'number') return [spec, spec, spec];
  switch (spec) {
    case 'white':
      return [1, 1, 1];
    case 'black':
      return [0, 0, 0];
    case 'gray':
      return [0.5, 0.5, 0.5];
    case 'random':
      return [rng.next(), rng.next(), rng.next()];
    case 'three_choices': {
      const v = [1, 0, 0.5][rng.int(3)]!;
      return [v, v, v];
    }
  }
}

/** A camera for the same view after resizing its image by `s` (pixel-centre convention: cx, cy scale alike). */
export function scaleCamera(c: Camera, s: number): Camera {
  if (s === 1) return c;
  return {
    ...c,
    width: Math.round(c.width * s),
    height: Math.round(c.height * s),
    fx: c.fx * s,
    fy: c.fy * s,
    cx: c.cx * s,
    cy: c.cy * s,
  };
}

export interface Decoded {
  width: number;
  height: number;
  channels: number;
  data: Uint8Array;
}

/** Decodes one view; square images only (as the reference); resized to S with Pillow's LANCZOS. */
export async function readView(file: string, S: number): Promise<Decoded> {
  let data: Buffer, info: OutputInfo;
  try {
    ({ data, info } = await sharp(file).toColourspace('srgb').raw().toBuffer({ resolveWithObject: true }));
  } catch (e) {
    throw new UserError(`cannot decode ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (info.width !== info.height) throw new UserError(`${file} is ${info.width}×${info.height}; views must be square`);
  let px = new Uint8Array(data.buffer, data.byteOffset, data.length);
  if (info.width !== S) px = pilResize(px, info.width, info.height, info.channels, S, S, 'lanczos');
  return { width: info.width, height: info.height, channels: info.channels, data: px };
}

/** The fork's `auto_generate_mask`: an RGB view on white gets alpha 0 where all channels exceed 250, else 1. */
export function withWhiteAsClear(img: Decoded): Decoded {
  const n = img.data.length / 3;
  const out = new Uint8Array(4 * n);
  for (let i = 0; i < n; i++) {
    const r = img.data[3 * i]!, g = img.data[3 * i + 1]!, b = img.data[3 * i + 2]!;
    out[4 * i] = r;
    out[4 * i + 1] = g;
    out[4 * i + 2] = b;
    out[4 * i + 3] = r > 250 && g > 250 && b > 250 ? 0 : 255;
  }
  return { ...img, channels: 4, data: out };
}

/** Interleaved 8-bit RGB(A) at S×S → planar RGB composited onto `bg`, and alpha. */
export function composite(
  px: Uint8Array,
  channels: number,
  S: number,
  bg: readonly number[],
  rgb: Float32Array,
  alpha: Float32Array,
): void {
  const n = S * S;
  for (let i = 0; i < n; i++) {
    const a = channels === 4 ? px[4 * i + 3]! / 255 : 1;
    alpha[i] = a;
    for (let c = 0; c < 3; c++) rgb[c * n + i] = (px[channels * i + c]! / 255) * a + bg[c]! * (1 - a);
  }
}
