/**
 * Photo-like frontal portraits of synthetic heads, for examples and end-to-end tests of the inference pipeline:
 * a head lit by a stronger, randomly placed key light, seen from a near-frontal camera with small random yaw,
 * pitch and roll and distance, in front of a coloured gradient background. Output: RGB PNGs (what a user's photo
 * would be) plus `portraits.json` with every draw.
 */
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { invertRigid, orbitCamera, type Camera } from '../cameras/camera.ts';
import { FACELIFT_FOV_DEG, FACELIFT_RADIUS } from '../cameras/rigs.ts';
import { makeOutputDir } from './dataset.ts';
import { generateHead, type Head } from './head.ts';
import { sampleHeadParams, type Rgb } from './params.ts';
import { writePng } from '../io/image.ts';
import { compositeRgb, renderRgba, type RgbaImage } from './render.ts';
import { createRng, hashString } from './rng.ts';

export interface PortraitOptions {
  outDir: string;
  count: number;
  seed: number;
  resolution: number;
  spacing?: number;
}

export interface PortraitPose {
  yawDeg: number;
  pitchDeg: number;
  rollDeg: number;
  distance: number;
}

export interface PortraitRecord {
  file: string;
  seed: number;
  pose: PortraitPose;
  /** Background colours at the top and bottom rows. */
  background: { top: Rgb; bottom: Rgb };
}

/**
 * A camera looking at the origin from the front (azimuth 270° + yaw, elevation = pitch), rolled about its
 * viewing axis by `rollDeg` (positive = image turns clockwise).
 */
export function portraitCamera(pose: PortraitPose, resolution: number): Camera {
  const base = orbitCamera({ azimuthDeg: 270 + pose.yawDeg, elevationDeg: pose.pitchDeg, radius: pose.distance, fovDeg: FACELIFT_FOV_DEG, width: resolution });
  const m = base.c2w;
  const a = (pose.rollDeg * Math.PI) / 180;
  const c = Math.cos(a), s = Math.sin(a);
  const c2w = new Float64Array(m);
  // Rotate the camera's x (right) and y (down) axes about its z (forward) axis.
  for (let r = 0; r < 3; r++) {
    const xr = m[4 * r], yr = m[4 * r + 1];
    c2w[4 * r] = c * xr + s * yr;
    c2w[4 * r + 1] = -s * xr + c * yr;
  }
  return { ...base, c2w, w2c: invertRigid(c2w) };
}

export function portraitSeed(seed: number, index: number): number {
  return hashString(`portrait/${index}`, seed >>> 0);
}

/** The pose and background of portrait `index` (independent of the head's own parameters). */
export function samplePortraitSetup(seed: number): { pose: PortraitPose; background: { top: Rgb; bottom: Rgb } } {
  const r = createRng(seed).fork('portrait');
  const pose = {
    yawDeg: r.range(-15, 15),
    pitchDeg: r.range(-8, 10),
    rollDeg: r.range(-6, 6),
    distance: FACELIFT_RADIUS * r.range(0.92, 1.12),
  };
  const hue = r.next(), sat = r.range(0.05, 0.45), val = r.range(0.35, 0.95);
  const k = (n: number): number => {
    const t = (n + hue * 6) % 6;
    return val - val * sat * Math.max(0, Math.min(t, 4 - t, 1));
  };
  const top: Rgb = [k(5), k(3), k(1)];
  const shade = r.range(0.75, 1.0);
  const bottom: Rgb = [top[0] * shade, top[1] * shade, top[2] * shade];
  return { pose, background: { top, bottom } };
}

export interface PortraitWritten {
  index: number;
  record: PortraitRecord;
  head: Head;
  /** The written image, opaque RGBA. */
  image: RgbaImage;
}

export async function* writePortraits(o: PortraitOptions): AsyncGenerator<PortraitWritten> {
  if (!Number.isInteger(o.count) || o.count < 1) throw new RangeError(`count must be a positive integer, got ${o.count}`);
  if (!Number.isInteger(o.resolution) || o.resolution < 16 || o.resolution > 4096) throw new RangeError(`resolution must be an integer in 16..4096, got ${o.resolution}`);
  const root = resolve(o.outDir);
  await makeOutputDir(root);
  const records: PortraitRecord[] = [];
  for (let index = 0; index < o.count; index++) {
    const seed = portraitSeed(o.seed, index);
    const head = generateHead(sampleHeadParams(seed, { lighting: 'photo' }), { spacing: o.spacing });
    const { pose, background } = samplePortraitSetup(seed);
    const img = renderRgba(head.gaussians, portraitCamera(pose, o.resolution));
    const H = img.height;
    const rgb = compositeRgb(img, (row) => {
      const t = H > 1 ? row / (H - 1) : 0;
      return [background.top[0] + (background.bottom[0] - background.top[0]) * t, background.top[1] + (background.bottom[1] - background.top[1]) * t, background.top[2] + (background.bottom[2] - background.top[2]) * t];
    });
    const file = `portrait_${String(index).padStart(6, '0')}.png`;
    await writePng(join(root, file), { width: img.width, height: img.height, channels: 3, data: rgb });
    const record: PortraitRecord = { file, seed, pose, background };
    records.push(record);
    const rgba = new Uint8Array(4 * img.width * img.height).fill(255);
    for (let i = 0; i < img.width * img.height; i++) rgba.set(rgb.subarray(3 * i, 3 * i + 3), 4 * i);
    yield { index, record, head, image: { width: img.width, height: img.height, data: rgba } };
  }
  await writeFile(join(root, 'portraits.json'), JSON.stringify({ seed: o.seed, resolution: o.resolution, portraits: records }, null, 2) + '\n');
}
