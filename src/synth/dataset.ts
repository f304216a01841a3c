/**
 * Writes synthetic heads in FaceLift's two training layouts (spec data-formats.md §1–5):
 *
 *   DIR/gslrm/sample_000000/images/cam_000.png … cam_031.png   32-view rig, straight RGBA
 *   DIR/gslrm/sample_000000/opencv_cameras.json                 {id, frames[{w,h,fx,fy,cx,cy,w2c,file_path,…}]}
 *   DIR/gslrm/data_gslrm_train.txt, data_gslrm_val.txt          one sample directory per line (absolute)
 *   DIR/mvdiffusion/sample_000000/cam_000.png … cam_005.png     front, front_right, right, back, left, front_left
 *   DIR/mvdiffusion/data_mvdiff_train.txt, data_mvdiff_val.txt
 *
 * plus, per sample, `gaussians.ply` (the ground-truth Gaussians in FaceLift's 62-property layout; written once, in
 * the first layout's folder) and `head.json` (seed, parameters, landmarks). Head i is drawn from seed `headSeed(seed, i)`, so any head can be regenerated
 * alone, and the same seed gives byte-identical files.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Camera } from '../cameras/camera.ts';
import { formatCameraJson } from '../cameras/opencv-json.ts';
import { faceliftViews, trainingRig } from '../cameras/rigs.ts';
import type { Head } from './head.ts';
import { HeadPool } from './head-pool.ts';
import { encodePng } from '../io/image.ts';
import { BLACK, straightRgba, type RgbaImage } from './render.ts';
import { writePly } from '../splat/ply.ts';
import { SplatRenderer } from '../splat/renderer.ts';
import { hashString } from './rng.ts';
import { UserError } from '../util/errors.ts';

export type Layout = 'gslrm' | 'mvdiffusion';
export const LAYOUTS: readonly Layout[] = ['gslrm', 'mvdiffusion'];

export interface HeadDatasetOptions {
  outDir: string;
  count: number;
  seed: number;
  /** Square image size (512 in FaceLift). */
  resolution: number;
  layouts: readonly Layout[];
  /** Fraction of samples (the last ones) listed in the val files; with one sample it is listed in both. */
  valFraction: number;
  /** Surface spacing passed to generateHead. */
  spacing?: number;
  /**
   * Elevations of the GS-LRM rig's rings of 32 views, in file order (default [20], the reference's data_sample);
   * e.g. [0, 20] adds the ring of FaceLift's generated views, which the reconstructor sees at inference.
   */
  elevations?: readonly number[];
  /** Write gaussians.ply per sample (default true; about 250 bytes per Gaussian). */
  writePly?: boolean;
  /** Renderer to use (its scene is replaced per head); by default one is created and closed here. */
  renderer?: SplatRenderer;
  /** Head generator; by default a one-worker pool (the next head is built while this one renders). */
  pool?: HeadPool;
}

/** What one finished head produced; yielded so that callers can show progress and build previews. */
export interface HeadWritten {
  index: number;
  name: string;
  head: Head;
  /** Rendered views per layout, in file order. */
  views: Partial<Record<Layout, RgbaImage[]>>;
}

/** Creates an output folder, turning file-system errors into a one-line UserError. */
export async function makeOutputDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw new UserError(`cannot create output folder ${dir}: ${(err as Error).message}`);
  }
}

export function headSeed(datasetSeed: number, index: number): number {
  return hashString(`head/${index}`, datasetSeed >>> 0);
}

export function sampleName(index: number): string {
  return `sample_${String(index).padStart(6, '0')}`;
}

/** Indices of the validation samples: the last round(count·fraction) (at least 1 when fraction > 0). */
export function valIndices(count: number, fraction: number): Set<number> {
  if (count === 1 && fraction > 0) return new Set([0]);
  const n = fraction > 0 ? Math.min(count - 1, Math.max(1, Math.round(count * fraction))) : 0;
  const out = new Set<number>();
  for (let i = count - n; i < count; i++) out.add(i);
  return out;
}

export function checkDatasetOptions(o: HeadDatasetOptions): void {
  if (!Number.isInteger(o.count) || o.count < 1) throw new RangeError(`count must be a positive integer, got ${o.count}`);
  if (!Number.isInteger(o.resolution) || o.resolution < 16 || o.resolution > 4096) throw new RangeError(`resolution must be an integer in 16..4096, got ${o.resolution}`);
  if (!(o.valFraction >= 0 && o.valFraction < 1)) throw new RangeError(`val fraction must be in [0, 1), got ${o.valFraction}`);
  if (o.layouts.length === 0) throw new RangeError('at least one layout is needed');
  const el = o.elevations ?? [20];
  if (el.length === 0 || !el.every((e) => Number.isFinite(e) && Math.abs(e) < 90)) {
    throw new RangeError(`elevations must be a non-empty list of degrees between -90 and 90, got ${el.join(',')}`);
  }
}

/** Renders `cameras` (frames in parallel) and writes them as PNGs named by `fileOf(i)` inside `dir`. */
async function writeViews(renderer: SplatRenderer, cameras: Camera[], dir: string, fileOf: (i: number) => string): Promise<RgbaImage[]> {
  const views: RgbaImage[] = [];
  const writes: Array<Promise<void>> = [];
  await renderer.renderFrames(cameras, { background: BLACK, colorOnly: true }, (i, r) => {
    const img = straightRgba(r);
    views.push(img);
    writes.push(encodePng({ width: img.width, height: img.height, channels: 4, data: img.data }).then((png) => writeFile(join(dir, fileOf(i)), png)));
  });
  await Promise.all(writes);
  return views;
}

function headJson(head: Head, name: string): string {
  return JSON.stringify({ id: name, seed: head.params.seed, gaussians: head.gaussians.count, counts: head.counts, landmarks: head.landmarks, params: head.params }, null, 2) + '\n';
}

/** The opencv_cameras.json text for the 32-view rig, with the reference's provenance fields. */
export function rigCameraJson(id: string, cameras: Camera[]): string {
  return formatCameraJson({
    id,
    frames: cameras.map((camera, i) => {
      const num = String(i).padStart(3, '0');
      return {
        camera,
        filePath: `images/cam_${num}.png`,
        extra: { blender_camera_name: `lrm_cam.${num}`, blender_camera_location: [camera.c2w[3], camera.c2w[7], camera.c2w[11]] },
      };
    }),
  });
}

/** Generates and writes the dataset, yielding after each head. List files are written at the end. */
export async function* writeHeadDataset(o: HeadDatasetOptions): AsyncGenerator<HeadWritten> {
  checkDatasetOptions(o);
  const root = resolve(o.outDir);
  const rig = (o.elevations ?? [20]).flatMap((e) => trainingRig(o.resolution, 32, e));
  const six = faceliftViews(o.resolution);
  const val = valIndices(o.count, o.valFraction);
  const lists: Record<Layout, { train: string[]; val: string[] }> = { gslrm: { train: [], val: [] }, mvdiffusion: { train: [], val: [] } };
  for (const layout of o.layouts) await makeOutputDir(join(root, layout));
  const renderer = o.renderer ?? await SplatRenderer.create();
  const pool = o.pool ?? new HeadPool();
  try {
    let next: Promise<Head> = pool.generate(headSeed(o.seed, 0), o.spacing);
    next.catch(() => undefined);
    for (let index = 0; index < o.count; index++) {
      const name = sampleName(index);
      const head = await next;
      if (index + 1 < o.count) {
        next = pool.generate(headSeed(o.seed, index + 1), o.spacing);
        next.catch(() => undefined); // a failure surfaces at the await; never as an unhandled rejection
      }
      await renderer.setScene(head.gaussians);
      const views: HeadWritten['views'] = {};
      let plyWritten = false;
      for (const layout of o.layouts) {
        const dir = join(root, layout, name);
        if (layout === 'gslrm') {
          await mkdir(join(dir, 'images'), { recursive: true });
          views.gslrm = await writeViews(renderer, rig, dir, (i) => join('images', `cam_${String(i).padStart(3, '0')}.png`));
          await writeFile(join(dir, 'opencv_cameras.json'), rigCameraJson(name, rig));
        } else {
          await mkdir(dir, { recursive: true });
          views.mvdiffusion = await writeViews(renderer, six, dir, (i) => `cam_${String(i).padStart(3, '0')}.png`);
        }
        await writeFile(join(dir, 'head.json'), headJson(head, name));
        if ((o.writePly ?? true) && !plyWritten) {
          await writePly(join(dir, 'gaussians.ply'), head.gaussians);
          plyWritten = true;
        }
        const l = lists[layout];
        if (val.has(index)) l.val.push(dir);
        if (!val.has(index) || o.count === 1) l.train.push(dir);
      }
      yield { index, name, head, views };
    }
  } finally {
    if (!o.renderer) await renderer.close();
    if (!o.pool) await pool.close();
  }

  // List files: newline-separated, no trailing newline (as data_sample's one-line files).
  for (const layout of o.layouts) {
    const stem = layout === 'gslrm' ? 'data_gslrm' : 'data_mvdiff';
    await writeFile(join(root, layout, `${stem}_train.txt`), lists[layout].train.join('\n'));
    await writeFile(join(root, layout, `${stem}_val.txt`), lists[layout].val.join('\n'));
  }
}
