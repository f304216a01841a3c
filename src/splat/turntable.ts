/**
 * The turntable video (spec pipeline.md §7): `frames` cameras around the head at elevation 0 starting at the front,
 * rendered on worker threads and piped into an H.264/yuv420p MP4 (io/video.ts). FaceLift itself encodes lossless
 * yuv444p, which some browsers cannot play; we encode yuv420p, CRF 18 by default.
 */
import { turntableCameras } from '../cameras/rigs.ts';
import { planarToImage } from '../io/image.ts';
import { Mp4Writer } from '../io/video.ts';
import type { GaussianSet } from './gaussians.ts';
import { SplatRenderer } from './renderer.ts';

export interface TurntableOptions {
  /** Output .mp4 path. */
  out: string;
  frames?: number;
  fps?: number;
  resolution?: number;
  background?: readonly [number, number, number];
  crf?: number;
  /** A renderer to reuse (its scene is replaced); otherwise one is created with `threads` workers and closed. */
  renderer?: SplatRenderer;
  threads?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function renderTurntable(g: GaussianSet, opts: TurntableOptions): Promise<{ path: string; frames: number; seconds: number }> {
  const t0 = performance.now();
  const frames = opts.frames ?? 150, resolution = opts.resolution ?? 512;
  const cameras = turntableCameras(frames, resolution);
  const renderer = opts.renderer ?? (await SplatRenderer.create({ threads: opts.threads }));
  const writer = Mp4Writer.open(opts.out, { width: resolution, height: resolution, fps: opts.fps ?? 30, crf: opts.crf });
  try {
    await renderer.setScene(g);
    await renderer.renderFrames(cameras, { background: opts.background, colorOnly: true }, async (i, img) => {
      await writer.write(planarToImage(img.rgb, resolution, resolution, { channels: 4 }).data);
      opts.onProgress?.(i + 1, frames);
    });
    await writer.close();
  } catch (err) {
    writer.abort();
    throw err;
  } finally {
    if (!opts.renderer) await renderer.close();
  }
  return { path: opts.out, frames, seconds: (performance.now() - t0) / 1000 };
}
