/**
 * The rasterizer's phases as units of work that run on any thread over shared buffers. The main thread
 * (renderer.ts) sends these as messages; a worker (render-worker.ts) or the main thread itself executes them.
 */
import { allocGrads, projectBackwardRange, type GaussianGrads } from './project-backward.ts';
import {
  allocProjected, cacheRange, projectRange, scatterRange, type CamParams, type GaussianArrays, type Projected, type SceneCache,
} from './project.ts';
import { allocColorImage, allocImage, binGaussians, type ColorResult, type RasterResult } from './rasterize.ts';
import { allocTileScratch, backwardTile, blendTile, sortTile, type ImagePlanes, type TileScratch } from './tiles.ts';

/** Shared per-frame state for the tile-parallel path. */
export interface FrameShared {
  P: Projected;
  /** [workers][tiles] counts, then cursors. */
  counts: Int32Array;
  tileStart: Int32Array;
  ids: Int32Array;
  image: ImagePlanes;
}

/** A scene as the workers hold it: the parameters and their camera-independent cache, both in shared memory. */
export interface SceneData {
  g: GaussianArrays;
  cache: SceneCache;
}

export type Job =
  | { kind: 'cache'; begin: number; end: number }
  | { kind: 'project'; cam: CamParams; tileCull: boolean; P: Projected; counts: Int32Array; begin: number; end: number }
  | { kind: 'scatter'; cam: CamParams; P: Projected; cursor: Int32Array; ids: Int32Array; begin: number; end: number }
  | {
    kind: 'tiles'; cam: CamParams; P: Projected; tileStart: Int32Array; ids: Int32Array; bg: number[]; image: ImagePlanes;
    worker: number; workers: number;
    backward?: { dRgb: Float32Array; dAlpha: Float32Array | null; grad2d: Float64Array };
  }
  | { kind: 'projectBackward'; cam: CamParams; parts: Float64Array[]; cudaJacobian: boolean; grads: GaussianGrads; begin: number; end: number }
  | { kind: 'frame'; cam: CamParams; tileCull: boolean; bg: number[]; colorOnly: boolean };

export type JobResult = { pairs?: number; image?: RasterResult | ColorResult };

let scratch: TileScratch | null = null;
let frameP: Projected | null = null;
const frameIds = { ids: new Int32Array(0) };

/** Runs one job on this thread against `scene`. */
export function runJob(scene: SceneData, job: Job): JobResult {
  const { g, cache } = scene;
  switch (job.kind) {
    case 'cache':
      cacheRange(g, cache, job.begin, job.end);
      return {};
    case 'project': {
      const pairs = projectRange(g, cache, job.cam, { tileCull: job.tileCull }, job.P, job.begin, job.end, job.counts);
      return { pairs };
    }
    case 'scatter':
      scatterRange(job.P, job.cam.tilesX, job.begin, job.end, job.cursor, job.ids);
      return {};
    case 'tiles': {
      const s = (scratch ??= allocTileScratch());
      const { cam, P, tileStart, ids, bg, image, backward } = job;
      const nTiles = cam.tilesX * cam.tilesY;
      if (backward) backward.grad2d.fill(0);
      for (let t = job.worker; t < nTiles; t += job.workers) {
        sortTile(ids, tileStart[t], tileStart[t + 1], P.depth, s);
        blendTile(t, cam, P, ids, tileStart[t], tileStart[t + 1], bg, s, image);
        if (backward) backwardTile(t, cam, P, ids, tileStart[t], bg, backward.dRgb, backward.dAlpha, s, backward.grad2d);
      }
      return {};
    }
    case 'projectBackward': {
      // Sum the workers' partial 2-D gradients for this range into the first part, then the chain rule.
      const [sum, ...rest] = job.parts;
      for (const part of rest) for (let i = 9 * job.begin; i < 9 * job.end; i++) sum[i] += part[i];
      projectBackwardRange(g, job.cam, sum, job.cudaJacobian, job.grads, job.begin, job.end);
      return {};
    }
    case 'frame': {
      // A whole frame on this thread (frame-parallel turntables).
      const { cam, bg } = job;
      if (!frameP || frameP.depth.length !== g.count) frameP = allocProjected(g.count);
      const { P, tileStart, ids } = binGaussians(g, cam, job.tileCull, frameP, cache, frameIds);
      const out = job.colorOnly ? allocColorImage(cam.width, cam.height) : allocImage(cam.width, cam.height);
      const s = (scratch ??= allocTileScratch());
      for (let t = 0; t < cam.tilesX * cam.tilesY; t++) blendTile(t, cam, P, ids, tileStart[t], tileStart[t + 1], bg, s, out);
      return { image: out };
    }
  }
}

export { allocGrads };
