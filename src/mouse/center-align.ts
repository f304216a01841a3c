/**
 * `facelift mouse center-align`: re-frames FaceLift samples so that every view's object box is centred and the
 * sample's largest box spans target_ratio of the image (one scale per sample, a shift per view) — and moves each
 * view's intrinsics with its image (the fork copies opencv_cameras.json unchanged, spec mouse.md §4, so its cameras
 * stop matching its pictures). Extrinsics are unchanged: a 2-D scale and shift is an intrinsics change only.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { encodePng, readImage } from '../io/image.ts';
import { formatCameraJson, parseCameraJson } from '../cameras/opencv-json.ts';
import { UserError, fsReason } from '../util/errors.ts';
import { transformIntrinsics } from './geometry.ts';
import { layoutSample, maskBox } from './convert.ts';
import { resampleScaleShift } from './resample.ts';

export interface CenterAlignOptions {
  inputDir: string;
  outputDir: string;
  targetRatio?: number;
  onProgress?: (done: number, total: number) => void;
  onSkip?: (sample: string, why: string) => void;
}

/** Object mask of an image: alpha > 0 when it has alpha, else any channel below 250 (not white). */
function objectMask(data: Uint8Array, channels: number, n: number): Uint8Array {
  const m = new Uint8Array(n);
  for (let p = 0; p < n; p++) {
    if (channels === 4) m[p] = data[4 * p + 3]! > 0 ? 255 : 0;
    else m[p] = [0, 1, 2].some((c) => data[channels * p + Math.min(c, channels - 1)]! < 250) ? 255 : 0;
  }
  return m;
}

export async function centerAlign(o: CenterAlignOptions): Promise<{ samples: number; skipped: number }> {
  const ratio = o.targetRatio ?? 0.6;
  if (!(ratio > 0 && ratio <= 1)) throw new UserError('--target_ratio must be in (0, 1]');
  let names: string[];
  try {
    names = (await readdir(o.inputDir)).filter((n) => n.startsWith('sample_')).sort();
  } catch (e) {
    throw new UserError(`cannot read ${o.inputDir}: ${fsReason(e)}`);
  }
  if (names.length === 0) throw new UserError(`${o.inputDir} has no sample_* folders (run facelift mouse convert first)`);
  await mkdir(o.outputDir, { recursive: true });
  let done = 0, skipped = 0;
  for (const name of names) {
    o.onProgress?.(done + skipped, names.length);
    try {
      await alignSample(join(o.inputDir, name), join(o.outputDir, name), ratio);
      done++;
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      skipped++;
      o.onSkip?.(name, e.message);
    }
  }
  // Split lists: the same samples, now under the output folder.
  const inAbs = resolve(o.inputDir), outAbs = resolve(o.outputDir);
  for (const list of (await readdir(o.inputDir)).filter((n) => n.endsWith('.txt'))) {
    const lines = (await readFile(join(o.inputDir, list), 'utf8')).split('\n').filter(Boolean);
    const moved = lines.map((l) => join(outAbs, basename(l.startsWith(inAbs) ? l.slice(inAbs.length) : l)))
      .filter((l) => existsSync(l));
    await writeFile(join(o.outputDir, list), moved.join('\n') + (moved.length ? '\n' : ''));
  }
  o.onProgress?.(names.length, names.length);
  return { samples: done, skipped };
}

async function alignSample(src: string, dst: string, ratio: number): Promise<void> {
  const cams = parseCameraJson(await readFile(join(src, 'opencv_cameras.json'), 'utf8').catch((e: unknown) => {
    throw new UserError(`${basename(src)}: cannot read opencv_cameras.json: ${fsReason(e)}`);
  }), join(basename(src), 'opencv_cameras.json'));
  const views = await Promise.all(cams.frames.map(async (f, i) => {
    const file = f.filePath ?? `images/cam_${String(i).padStart(3, '0')}.png`;
    const img = await readImage(join(src, file)).catch(() => {
      throw new UserError(`${basename(src)}: cannot read ${file} as an image`);
    });
    if (img.width !== img.height) throw new UserError(`${basename(src)}/${file} is not square`);
    return { file, img };
  }));
  const size = views[0]!.img.width;
  const boxes = views.map(({ img }) => maskBox(objectMask(img.data, img.channels, size * size), size, size));
  if (boxes.some((b) => b === null)) throw new UserError(`${basename(src)}: a view shows no object; not aligned`);
  const { scale, shifts } = layoutSample(boxes as NonNullable<(typeof boxes)[number]>[], size, ratio);
  const tmp = `${dst}.partial`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'images'), { recursive: true });
  const frames = cams.frames.map((f, i) => {
    const [tx, ty] = shifts[i]!;
    const k = transformIntrinsics(f.camera, scale, tx, ty);
    return { ...f, camera: { ...f.camera, ...k }, filePath: views[i]!.file };
  });
  for (const [i, { file, img }] of views.entries()) {
    const [tx, ty] = shifts[i]!;
    const fill = img.channels === 4 ? [255, 255, 255, 0] : Array<number>(img.channels).fill(255);
    const data = resampleScaleShift(img.data, size, size, img.channels, scale, tx, ty, size, fill);
    await mkdir(join(tmp, file, '..'), { recursive: true });
    await writeFile(join(tmp, file), await encodePng({ width: size, height: size, channels: img.channels, data }));
  }
  await writeFile(join(tmp, 'opencv_cameras.json'), formatCameraJson({ id: cams.id, frames, extra: cams.extra }));
  await rm(dst, { recursive: true, force: true });
  await rename(tmp, dst);
}
