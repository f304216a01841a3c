/**
 * A raw rig recording made up for tests, in the markerless_mouse_1_nerf layout: a procedural mouse (body, head, ears,
 * tail — ellipsoids) walking a small circle, seen by the committed 6-camera calibration (testdata/new_cam.pkl,
 * written by numpy), rendered exactly by ray casting into colour videos (`videos_undist/<cam>.mp4`) and mask videos
 * (`simpleclick_undist/<cam>.mp4`). `silhouette` renders the same mouse through any camera, so what a converter
 * writes can be checked against the truth.
 */
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Mp4Writer } from '../../io/video.ts';
import { intrinsicsOf, mulT, type Intrinsics, type Mat3, type Vec3 } from '../geometry.ts';
import { readRig, type RigCamera } from '../rig.ts';

export const RIG_FIXTURE = new URL('../testdata/new_cam.pkl', import.meta.url).pathname;
export const RAW_SIZE = { width: 288, height: 256 };

interface Ellipsoid {
  centre: Vec3;
  /** Row-major rotation: rows are the ellipsoid's axes in world coordinates. */
  axes: Mat3;
  radii: Vec3;
  colour: Vec3;
}

/** The mouse at frame `f`: it walks a 15 mm circle around the arena point, turning as it goes. */
export function mouseAt(f: number): Ellipsoid[] {
  const a = f * 0.15;
  const pos: Vec3 = [30 + 15 * Math.cos(a), -20 + 15 * Math.sin(a), 15];
  const h = a + Math.PI / 2; // heading: along the circle
  const fwd: Vec3 = [Math.cos(h), Math.sin(h), 0], left: Vec3 = [-Math.sin(h), Math.cos(h), 0];
  const axes: Mat3 = [fwd[0], fwd[1], 0, left[0], left[1], 0, 0, 0, 1];
  const at = (ahead: number, side: number, up: number): Vec3 =>
    [pos[0] + ahead * fwd[0] + side * left[0], pos[1] + ahead * fwd[1] + side * left[1], pos[2] + up];
  const parts: Ellipsoid[] = [
    { centre: at(0, 0, 0), axes, radii: [30, 16, 14], colour: [150, 110, 80] },
    { centre: at(32, 0, 4), axes, radii: [14, 10, 10], colour: [170, 125, 95] },
    { centre: at(30, 8, 14), axes, radii: [3, 6, 6], colour: [230, 160, 160] },
    { centre: at(30, -8, 14), axes, radii: [3, 6, 6], colour: [230, 160, 160] },
  ];
  for (let k = 0; k < 5; k++) {
    parts.push({ centre: at(-32 - 7 * k, 2 * Math.sin(k + a), -4 - k), axes, radii: [5, 2.2, 2.2], colour: [210, 150, 140] });
  }
  return parts;
}

/** Distance along the ray to the first ellipsoid it hits, and that ellipsoid. */
function hit(o: Vec3, d: Vec3, parts: Ellipsoid[]): { t: number; part: Ellipsoid; p: Vec3 } | null {
  let best: { t: number; part: Ellipsoid; p: Vec3 } | null = null;
  for (const e of parts) {
    const A = e.axes;
    const rel: Vec3 = [o[0] - e.centre[0], o[1] - e.centre[1], o[2] - e.centre[2]];
    const lo: number[] = [], ld: number[] = [];
    for (let k = 0; k < 3; k++) {
      lo.push((A[3 * k]! * rel[0] + A[3 * k + 1]! * rel[1] + A[3 * k + 2]! * rel[2]) / e.radii[k]!);
      ld.push((A[3 * k]! * d[0] + A[3 * k + 1]! * d[1] + A[3 * k + 2]! * d[2]) / e.radii[k]!);
    }
    const qa = ld[0]! ** 2 + ld[1]! ** 2 + ld[2]! ** 2;
    const qb = 2 * (lo[0]! * ld[0]! + lo[1]! * ld[1]! + lo[2]! * ld[2]!);
    const qc = lo[0]! ** 2 + lo[1]! ** 2 + lo[2]! ** 2 - 1;
    const disc = qb * qb - 4 * qa * qc;
    if (disc < 0) continue;
    const t = (-qb - Math.sqrt(disc)) / (2 * qa);
    if (t > 0 && (!best || t < best.t)) best = { t, part: e, p: [o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]] };
  }
  return best;
}

/**
 * Renders the mouse through a camera (continuous-coordinate intrinsics `k`, world→camera R, T) at W×H: RGBA
 * colour on a grey arena, and the mask (255 inside). `world` maps a converted sample's world back: x = x'/scale +
 * centre.
 */
export function renderMouse(
  k: Intrinsics, R: Mat3, T: Vec3, W: number, H: number, parts: Ellipsoid[],
  world: { centre: Vec3; scale: number } = { centre: [0, 0, 0], scale: 1 },
): { rgba: Uint8Array; mask: Uint8Array } {
  const c = mulT(R, T);
  const origin: Vec3 = [-c[0] / world.scale + world.centre[0], -c[1] / world.scale + world.centre[1], -c[2] / world.scale + world.centre[2]];
  const rgba = new Uint8Array(W * H * 4), mask = new Uint8Array(W * H);
  for (let j = 0; j < H; j++) {
    for (let i = 0; i < W; i++) {
      const d = mulT(R, [(i + 0.5 - k.cx) / k.fx, (j + 0.5 - k.cy) / k.fy, 1]);
      const h = hit(origin, d, parts);
      const p = 4 * (j * W + i);
      if (h) {
        mask[j * W + i] = 255;
        const stripe = 0.85 + 0.15 * Math.sin(h.p[0] * 0.6) * Math.sin(h.p[1] * 0.6);
        for (let ch = 0; ch < 3; ch++) rgba[p + ch] = Math.min(255, h.part.colour[ch]! * stripe);
      } else {
        rgba.fill(((i >> 4) + (j >> 4)) % 2 ? 120 : 135, p, p + 3);
      }
      rgba[p + 3] = 255;
    }
  }
  return { rgba, mask };
}

/** Writes `frames` frames of the raw layout into `dir`; returns the rig. */
export async function writeRawRecording(dir: string, frames: number): Promise<RigCamera[]> {
  const rig = await readRig(RIG_FIXTURE);
  const { width: W, height: H } = RAW_SIZE;
  await mkdir(join(dir, 'videos_undist'), { recursive: true });
  await mkdir(join(dir, 'simpleclick_undist'), { recursive: true });
  await copyFile(RIG_FIXTURE, join(dir, 'new_cam.pkl'));
  for (const [i, cam] of rig.entries()) {
    const colour = Mp4Writer.open(join(dir, 'videos_undist', `${i}.mp4`), { width: W, height: H });
    const masks = Mp4Writer.open(join(dir, 'simpleclick_undist', `${i}.mp4`), { width: W, height: H });
    for (let f = 0; f < frames; f++) {
      const { rgba, mask } = renderMouse(intrinsicsOf(cam.K), cam.R, cam.T, W, H, mouseAt(f));
      await colour.write(rgba);
      const m = new Uint8Array(W * H * 4);
      for (let p = 0; p < W * H; p++) {
        m.fill(mask[p]!, 4 * p, 4 * p + 3);
        m[4 * p + 3] = 255;
      }
      await masks.write(m);
    }
    await colour.close();
    await masks.close();
  }
  return rig;
}
