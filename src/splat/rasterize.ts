/**
 * The 3DGS tile rasterizer (graphdeco semantics, spec gslrm.md §5; golden README §1.4 `*_tile16`) as pure
 * functions: `rasterize` renders one camera, `rasterizeBackward` gives the gradients of a loss w.r.t. every Gaussian
 * parameter from the loss's gradient w.r.t. the image.
 *
 * These run on the calling thread. `SplatRenderer` (renderer.ts) runs the same phases on worker threads, parallel
 * over Gaussian ranges and tiles, for large images and scenes.
 *
 * Phases: (1) project every Gaussian and count the 16×16 tiles it touches; (2) radix sort by view depth, then a
 * stable counting sort of (Gaussian, tile) pairs into per-tile lists; (3) per tile: composite front to back
 * (and, for the backward, the reverse pass); (4) backward only: per-Gaussian chain rule to the parameters.
 */
import type { Camera } from '../cameras/camera.ts';
import { validateGaussians, type GaussianSet } from './gaussians.ts';
import { allocGrads, projectBackwardRange, type GaussianGrads } from './project-backward.ts';
import {
  allocProjected, allocSceneCache, allocSortScratch, cacheRange, camParams, depthOrder, projectRange, scatterOrdered, type CamParams, type Projected, type SceneCache,
} from './project.ts';
import { allocTileScratch, backwardTile, blendTile, type ColorPlanes, type ImagePlanes } from './tiles.ts';

export type { GaussianGrads } from './project-backward.ts';

export interface RasterOptions {
  /** Background colour composited behind the Gaussians, RGB; default white (1, 1, 1) as in FaceLift. */
  background?: readonly [number, number, number];
  /**
   * true (default): graphdeco's 16×16 tile rule (a Gaussian is evaluated only in tiles its 3σ rectangle covers).
   * false: every Gaussian at every pixel (the golden "dense" reference variant).
   */
  tileCull?: boolean;
}

/**
 * A rendered image's colour. `rgb` is planar [3, H, W] (channel-major, like the reference's [3,H,W] renders), not
 * clamped; `alpha` = 1 − final transmittance, [H, W] row-major.
 */
export interface ColorResult {
  width: number;
  height: number;
  rgb: Float32Array;
  alpha: Float32Array;
}

/**
 * A rendered image: colour, `depth` = Σ z·α·T (accumulated view depth, not normalised by alpha; divide by alpha
 * for the expected depth), `nBlended` = Gaussians composited per pixel, `terminated` = 1 where the T < 1e-4 stop
 * fired. All [H, W] row-major.
 */
export interface RasterResult extends ColorResult {
  depth: Float32Array;
  nBlended: Int32Array;
  terminated: Uint8Array;
}

export interface BackwardInput {
  /** ∂L/∂rgb, planar [3, H, W]. */
  dRgb: Float32Array;
  /** ∂L/∂alpha, [H, W] (optional). */
  dAlpha?: Float32Array;
}

export interface BackwardOptions extends RasterOptions {
  /** Use the graphdeco CUDA convention for ∂J/∂Z under the FOV clamp instead of the exact derivative. */
  cudaJacobian?: boolean;
}

export function allocImage(width: number, height: number, shared = false): ImagePlanes & { width: number; height: number } {
  const n = width * height;
  const mk = (bytes: number) => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  return {
    width, height,
    rgb: new Float32Array(mk(12 * n)), alpha: new Float32Array(mk(4 * n)), depth: new Float32Array(mk(4 * n)),
    nBlended: new Int32Array(mk(4 * n)), terminated: new Uint8Array(mk(n)),
  };
}

/** Colour planes only (see ColorResult). */
export function allocColorImage(width: number, height: number): ColorPlanes & { width: number; height: number } {
  const n = width * height;
  return { width, height, rgb: new Float32Array(3 * n), alpha: new Float32Array(n) };
}

export function resolveBackground(opts: RasterOptions): [number, number, number] {
  const bg = opts.background ?? [1, 1, 1];
  if (bg.length !== 3 || !bg.every(Number.isFinite)) throw new RangeError(`background must be 3 finite numbers, got ${JSON.stringify(bg)}`);
  return [bg[0], bg[1], bg[2]];
}

const sortScratch = allocSortScratch();

/**
 * Phases 1–2 on this thread: projection, one global depth sort, and per-tile lists that come out depth-sorted
 * (the tile-parallel path instead sorts each tile's list, with the same result).
 */
export function binGaussians(
  g: GaussianSet, cam: CamParams, tileCull: boolean, reuse?: Projected, cache?: SceneCache, idsBuffer?: { ids: Int32Array },
): { P: Projected; tileStart: Int32Array; ids: Int32Array } {
  const nTiles = cam.tilesX * cam.tilesY;
  const P = reuse ?? allocProjected(g.count);
  if (!cache) {
    cache = allocSceneCache(g.count, g.shDegree);
    cacheRange(g, cache, 0, g.count);
  }
  const count = new Int32Array(nTiles);
  const pairs = projectRange(g, cache, cam, { tileCull }, P, 0, g.count, count);
  const tileStart = new Int32Array(nTiles + 1);
  for (let t = 0; t < nTiles; t++) tileStart[t + 1] = tileStart[t] + count[t];
  // The per-tile lists; `idsBuffer` lets repeated calls reuse one growing array.
  let ids: Int32Array;
  if (idsBuffer) {
    if (idsBuffer.ids.length < pairs) idsBuffer.ids = new Int32Array(Math.ceil(pairs * 1.25));
    ids = idsBuffer.ids;
  } else ids = new Int32Array(pairs);
  const { order, n, boxes } = depthOrder(P, g.count, sortScratch);
  scatterOrdered(P, cam.tilesX, order, n, tileStart.slice(0, nTiles), ids, boxes);
  return { P, tileStart, ids };
}

/** Renders `g` from `camera` on the calling thread. */
export function rasterize(g: GaussianSet, camera: Camera, opts: RasterOptions = {}): RasterResult {
  validateGaussians(g);
  const cam = camParams(camera);
  const bg = resolveBackground(opts);
  const { P, tileStart, ids } = binGaussians(g, cam, opts.tileCull ?? true);
  const out = allocImage(cam.width, cam.height);
  const s = allocTileScratch();
  for (let t = 0; t < cam.tilesX * cam.tilesY; t++) {
    blendTile(t, cam, P, ids, tileStart[t], tileStart[t + 1], bg, s, out);
  }
  return out;
}

export function checkUpstream(cam: CamParams, up: BackwardInput): void {
  const n = cam.width * cam.height;
  if (up.dRgb.length !== 3 * n) throw new RangeError(`dRgb has ${up.dRgb.length} values, expected 3·${cam.height}·${cam.width} = ${3 * n} (planar [3,H,W])`);
  if (up.dAlpha !== undefined && up.dAlpha.length !== n) throw new RangeError(`dAlpha has ${up.dAlpha.length} values, expected ${n} ([H,W])`);
}

/**
 * Gradients of a loss L w.r.t. every parameter of `g`, given ∂L/∂rgb (and optionally ∂L/∂alpha) of the image
 * `rasterize(g, camera, opts)` produces. Quaternion gradients are w.r.t. the raw (unnormalised) quaternion,
 * opacity gradients w.r.t. the logit, scale gradients w.r.t. the log-scale. Depth carries no gradient.
 * Also returns the forward image it recomputed.
 */
export function rasterizeBackward(
  g: GaussianSet, camera: Camera, upstream: BackwardInput, opts: BackwardOptions = {},
): GaussianGrads & { image: RasterResult } {
  validateGaussians(g);
  const cam = camParams(camera);
  checkUpstream(cam, upstream);
  const bg = resolveBackground(opts);
  const { P, tileStart, ids } = binGaussians(g, cam, opts.tileCull ?? true);
  const image = allocImage(cam.width, cam.height);
  const s = allocTileScratch();
  const grad2d = new Float64Array(9 * g.count);
  for (let t = 0; t < cam.tilesX * cam.tilesY; t++) {
    blendTile(t, cam, P, ids, tileStart[t], tileStart[t + 1], bg, s, image);
    backwardTile(t, cam, P, ids, tileStart[t], bg, upstream.dRgb, upstream.dAlpha ?? null, s, grad2d);
  }
  const grads = allocGrads(g.count, g.shDegree);
  projectBackwardRange(g, cam, grad2d, opts.cudaJacobian ?? false, grads, 0, g.count);
  return { ...grads, image };
}
