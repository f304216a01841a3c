/**
 * `facelift mouse convert`: a multi-camera rig recording (markerless_mouse_1_nerf: `videos_undist/<cam>.mp4`,
 * `simpleclick_undist/<cam>.mp4` masks, `new_cam.pkl`) → FaceLift samples (`sample_XXXXXX/images/cam_00i.png` RGBA +
 * `opencv_cameras.json`) and train/val lists, with cameras that agree with the pixels (spec mouse.md §3 and the
 * fork's defects it lists):
 *  - one scale per sample (the largest view's mask box becomes target_ratio × target_size), each view shifted so
 *    its own mask box is centred, and that same scale and shift applied to its intrinsics (isotropically);
 *  - the sample's world moved so the object is at the origin — the point nearest to the rays through the views'
 *    mask centroids — and scaled once so the mean camera distance is FaceLift's 2.7 (rotations untouched).
 * Every video is decoded in one pass (no seeking), frame-accurately.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { encodePng } from '../io/image.ts';
import { FrameStream, probeVideo } from '../io/video.ts';
import { invertRigid } from '../cameras/camera.ts';
import { formatCameraJson } from '../cameras/opencv-json.ts';
import { UserError } from '../util/errors.ts';
import {
  FACELIFT_DISTANCE, cameraCentre, intrinsicsOf, nearestPointToRays, pixelRay, recentre, transformIntrinsics,
  type Intrinsics, type Mat3, type Vec3,
} from './geometry.ts';
import { resampleScaleShift } from './resample.ts';
import { readRig, type RigCamera } from './rig.ts';

/** Frames where the recording jumps (the fork skips exactly these). */
export const JUMP_FRAMES = new Set([5900, 11800, 17700]);

export interface ConvertOptions {
  inputDir: string;
  outputDir: string;
  frameInterval?: number;
  targetSize?: number;
  targetRatio?: number;
  maxSamples?: number;
  startSample?: number;
  onProgress?: (done: number, total: number) => void;
  onSkip?: (frame: number, why: string) => void;
}

export interface ConvertReport {
  samples: number;
  skipped: number;
  train: string;
  val: string;
}

interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  /** Centroid of the mask pixels, continuous coordinates. */
  cx: number;
  cy: number;
}

/** Box (inclusive pixel indices) and centroid of mask > 127, or null when empty. */
export function maskBox(mask: Uint8Array, W: number, H: number): Box | null {
  let x0 = W, y0 = H, x1 = -1, y1 = -1, sx = 0, sy = 0, n = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (mask[y * W + x]! <= 127) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      sx += x + 0.5;
      sy += y + 0.5;
      n++;
    }
  }
  return n ? { x0, y0, x1, y1, cx: sx / n, cy: sy / n } : null;
}

/** One sample's 2-D layout: the common scale and each view's shift, in continuous coordinates. */
export function layoutSample(boxes: Box[], targetSize: number, targetRatio: number): { scale: number; shifts: Array<[number, number]> } {
  const longest = Math.max(...boxes.map((b) => Math.max(b.x1 - b.x0 + 1, b.y1 - b.y0 + 1)));
  const scale = (targetRatio * targetSize) / longest;
  // The box centre (its edges' midpoint) goes to the image centre.
  const shifts = boxes.map((b): [number, number] => [
    targetSize / 2 - (scale * (b.x0 + b.x1 + 1)) / 2,
    targetSize / 2 - (scale * (b.y0 + b.y1 + 1)) / 2,
  ]);
  return { scale, shifts };
}

/** The sample's world: object centre (nearest point to the centroid rays) and the scale to a mean distance of 2.7. */
export function sampleWorld(rig: RigCamera[], boxes: Box[]): { centre: Vec3; scale: number } {
  const origins = rig.map((c) => cameraCentre(c.R, c.T));
  const dirs = rig.map((c, i) => pixelRay(intrinsicsOf(c.K), c.R, boxes[i]!.cx, boxes[i]!.cy));
  const centre = nearestPointToRays(origins, dirs);
  const mean = origins.reduce((a, o) => a + Math.hypot(o[0] - centre[0], o[1] - centre[1], o[2] - centre[2]), 0) / origins.length;
  return { centre, scale: FACELIFT_DISTANCE / mean };
}

/** A 4×4 row-major world→camera matrix. */
function w2cMatrix(R: Mat3, T: Vec3): Float64Array {
  return Float64Array.from([R[0], R[1], R[2], T[0], R[3], R[4], R[5], T[1], R[6], R[7], R[8], T[2], 0, 0, 0, 1]);
}

export function cameraFrame(k: Intrinsics, R: Mat3, T: Vec3, size: number, file: string) {
  const w2c = w2cMatrix(R, T);
  return {
    camera: { width: size, height: size, fx: k.fx, fy: k.fy, cx: k.cx, cy: k.cy, w2c, c2w: invertRigid(w2c) },
    filePath: file,
    extra: {},
  };
}

function cameraCount(dir: string): number {
  let n = 0;
  while (existsSync(join(dir, 'videos_undist', `${n}.mp4`))) n++;
  return n;
}

export async function convertRecording(o: ConvertOptions): Promise<ConvertReport> {
  const every = o.frameInterval ?? 5, size = o.targetSize ?? 512, ratio = o.targetRatio ?? 0.6;
  if (!(every >= 1 && size >= 16 && ratio > 0 && ratio <= 1)) throw new UserError('frame interval ≥ 1, target size ≥ 16, 0 < target ratio ≤ 1');
  const rig = await readRig(join(o.inputDir, 'new_cam.pkl'));
  const n = cameraCount(o.inputDir);
  if (n === 0) throw new UserError(`${o.inputDir}: no videos_undist/0.mp4 — is this a markerless_mouse_1_nerf folder?`);
  if (n !== rig.length) throw new UserError(`${o.inputDir}: ${n} colour videos but ${rig.length} calibrated cameras`);
  for (let i = 0; i < n; i++) {
    if (!existsSync(join(o.inputDir, 'simpleclick_undist', `${i}.mp4`))) throw new UserError(`${o.inputDir}: simpleclick_undist/${i}.mp4 (the mask video of camera ${i}) is missing`);
  }
  const total = (await probeVideo(join(o.inputDir, 'videos_undist', '0.mp4'))).frames;
  const colour = await Promise.all(rig.map((_, i) => FrameStream.open(join(o.inputDir, 'videos_undist', `${i}.mp4`), 'rgb24', every)));
  const masks = await Promise.all(rig.map((_, i) => FrameStream.open(join(o.inputDir, 'simpleclick_undist', `${i}.mp4`), 'gray', every)));
  const frames = Math.ceil(total / every);
  const planned = Math.min(frames, o.maxSamples ?? Infinity);
  await mkdir(o.outputDir, { recursive: true });
  const written: string[] = [];
  let skipped = 0;
  let index = o.startSample ?? 0;
  try {
    for (let f = 0; f < frames && written.length < planned; f++) {
      const frameNo = f * every;
      const rgb = await Promise.all(colour.map((s) => s.next()));
      const msk = await Promise.all(masks.map((s) => s.next()));
      if (rgb.some((x) => !x) || msk.some((x) => !x)) break;
      o.onProgress?.(written.length + skipped, planned);
      if (JUMP_FRAMES.has(frameNo)) continue;
      const boxes = msk.map((m, i) => maskBox(m!, colour[i]!.width, colour[i]!.height));
      const empty = boxes.findIndex((b) => b === null);
      if (empty >= 0) {
        skipped++;
        o.onSkip?.(frameNo, `camera ${empty} sees no mouse in its mask`);
        continue;
      }
      const dir = join(o.outputDir, `sample_${String(index).padStart(6, '0')}`);
      await writeSample(dir, rig, rgb as Uint8Array[], msk as Uint8Array[], boxes as Box[], colour, size, ratio, frameNo);
      written.push(resolve(dir));
      index++;
    }
  } finally {
    for (const s of [...colour, ...masks]) s.close();
  }
  if (written.length === 0) throw new UserError(`${o.inputDir}: no frame had the mouse in every camera's mask; nothing written`);
  // The last samples in time go to validation, as the fork does.
  const nVal = Math.min(100, Math.max(1, Math.min(written.length - 1, Math.max(10, Math.floor(0.05 * written.length)))));
  const train = join(o.outputDir, 'data_mouse_train.txt'), val = join(o.outputDir, 'data_mouse_val.txt');
  await writeFile(train, written.slice(0, written.length - nVal).join('\n') + '\n');
  await writeFile(val, written.slice(written.length - nVal).join('\n') + '\n');
  o.onProgress?.(planned, planned);
  return { samples: written.length, skipped, train, val };
}

async function writeSample(
  dir: string, rig: RigCamera[], rgb: Uint8Array[], msk: Uint8Array[], boxes: Box[], streams: FrameStream[],
  size: number, ratio: number, frameNo: number,
): Promise<void> {
  const { scale, shifts } = layoutSample(boxes, size, ratio);
  const world = sampleWorld(rig, boxes);
  const tmp = `${dir}.partial`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(join(tmp, 'images'), { recursive: true });
  const frames = [];
  for (let i = 0; i < rig.length; i++) {
    const { width: W, height: H } = streams[i]!;
    const [tx, ty] = shifts[i]!;
    const colour = resampleScaleShift(rgb[i]!, W, H, 3, scale, tx, ty, size, [255, 255, 255]);
    const alpha = resampleScaleShift(msk[i]!, W, H, 1, scale, tx, ty, size, [0]);
    const rgba = new Uint8Array(size * size * 4);
    for (let p = 0; p < size * size; p++) {
      rgba[4 * p] = colour[3 * p]!;
      rgba[4 * p + 1] = colour[3 * p + 1]!;
      rgba[4 * p + 2] = colour[3 * p + 2]!;
      rgba[4 * p + 3] = alpha[p]!;
    }
    const file = `images/cam_${String(i).padStart(3, '0')}.png`;
    await writeFile(join(tmp, file), await encodePng({ width: size, height: size, channels: 4, data: rgba }));
    const c = rig[i]!;
    const k = transformIntrinsics(intrinsicsOf(c.K), scale, tx, ty);
    frames.push(cameraFrame(k, c.R, recentre(c.R, c.T, world.centre, world.scale), size, file));
  }
  const extra = { source_frame: frameNo, world_centre: world.centre, world_scale: world.scale };
  await writeFile(join(tmp, 'opencv_cameras.json'), formatCameraJson({ id: `frame_${frameNo}`, frames, extra }));
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
}
