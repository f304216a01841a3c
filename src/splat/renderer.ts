/**
 * `SplatRenderer`: the rasterizer on worker threads. The scene is copied once into shared memory; then
 *  - `render(camera)` splits one frame over the workers (Gaussian ranges for projection and binning, tiles for
 *    sorting and compositing), giving exactly the image `rasterize` gives;
 *  - `renderFrames(cameras)` renders whole frames on each worker (no per-frame synchronisation: best for
 *    turntables), delivering them in order;
 *  - `backward(camera, upstream)` is the tile-parallel `rasterizeBackward`.
 * With `threads: 1`, or for small images, everything runs on the calling thread.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Camera } from '../cameras/camera.ts';
import { validateGaussians, type GaussianSet } from './gaussians.ts';
import { allocGrads, type GaussianGrads } from './project-backward.ts';
import { allocProjected, allocSceneCache, cacheRange, camParams, type CamParams, type Projected } from './project.ts';
import { mortonOrder, permuteGaussians, unpermute } from './order.ts';
import { runJob, type Job, type JobResult, type SceneData } from './parallel.ts';
import {
  allocImage, checkUpstream, rasterizeBackward, resolveBackground,
  type BackwardInput, type BackwardOptions, type ColorResult, type RasterOptions, type RasterResult,
} from './rasterize.ts';

export interface RendererOptions {
  /** Worker threads; default: the machine's available parallelism. 1 = no workers. */
  threads?: number;
  /** Images with fewer pixels render on the calling thread (thread start-up and messages cost more). Default 128². */
  minParallelPixels?: number;
  /**
   * Scenes with at least this many Gaussians are stored in Morton order (better cache use when compositing;
   * gradients are returned in the caller's order). Default 65536; Infinity disables it.
   */
  reorderFrom?: number;
}

interface Pending { resolve: (r: JobResult) => void; reject: (e: Error) => void }

export interface FrameOptions extends RasterOptions {
  /**
   * Composite colour and alpha only (no depth, per-pixel counts or termination flags): about a tenth less work,
   * for frames that only become pictures (videos, dataset views).
   */
  colorOnly?: boolean;
}

export class SplatRenderer {
  private scene: SceneData | null = null;
  private sceneSet: GaussianSet | null = null;
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private P: Projected | null = null;
  private ids: Int32Array = new Int32Array(new SharedArrayBuffer(4));
  private parts: Float64Array[] = [];
  private readonly minParallelPixels: number;
  private readonly reorderFrom: number;
  /** Morton permutation of the current scene (position → caller's index), or null. */
  private perm: Int32Array | null = null;
  private queue: Promise<void> = Promise.resolve();

  private constructor(private readonly workers: Worker[], opts: RendererOptions) {
    this.minParallelPixels = opts.minParallelPixels ?? 128 * 128;
    this.reorderFrom = opts.reorderFrom ?? 65536;
    for (const w of workers) {
      w.on('message', (m: { id: number; result?: JobResult; error?: string }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (this.pending.size === 0) for (const x of this.workers) x.unref();
        if (m.error !== undefined) p.reject(new Error(`render worker: ${m.error}`));
        else p.resolve(m.result ?? {});
      });
      w.on('error', (err) => { for (const p of this.pending.values()) p.reject(err); this.pending.clear(); });
      w.unref();
    }
  }

  static async create(opts: RendererOptions = {}): Promise<SplatRenderer> {
    const threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
    const workers: Worker[] = [];
    if (threads > 1) {
      for (let i = 0; i < threads; i++) {
        // A plain-JS entry registers tsx's loader in the worker (execArgv ['--import', 'tsx'] does not reach
        // worker threads' module loading in Node 20), then loads render-worker.ts.
        workers.push(new Worker(new URL('./render-worker-boot.mjs', import.meta.url)));
      }
    }
    return new SplatRenderer(workers, opts);
  }

  /** Worker threads in use (0 = everything on the calling thread). */
  get threads(): number { return this.workers.length; }

  /** Copies `g` into shared memory for the workers. Later calls replace the scene. */
  async setScene(g: GaussianSet): Promise<void> {
    validateGaussians(g);
    this.P = null;
    this.parts = [];
    this.perm = g.count >= this.reorderFrom ? mortonOrder(g.means, g.count) : null;
    if (this.perm) g = permuteGaussians(g, this.perm, this.workers.length > 0);
    this.sceneSet = g;
    if (this.workers.length === 0) {
      const cache = allocSceneCache(g.count, g.shDegree);
      cacheRange(g, cache, 0, g.count);
      this.scene = { g, cache };
      return;
    }
    const share = (a: Float32Array) => {
      if (a.buffer instanceof SharedArrayBuffer) return a;
      const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
      s.set(a);
      return s;
    };
    const scene: SceneData = {
      g: {
        count: g.count, shDegree: g.shDegree, means: share(g.means), scales: share(g.scales),
        rotations: share(g.rotations), opacities: share(g.opacities), sh: share(g.sh),
      },
      cache: allocSceneCache(g.count, g.shDegree, true),
    };
    this.scene = scene;
    await Promise.all(this.workers.map((w) => this.send(w, { scene })));
    const W = this.workers.length;
    await Promise.all(this.workers.map((w, i) => this.send(w, {
      job: { kind: 'cache', begin: Math.floor((g.count * i) / W), end: Math.floor((g.count * (i + 1)) / W) },
    })));
  }

  private send(w: Worker, msg: { scene?: SceneData; job?: Job }): Promise<JobResult> {
    const id = this.nextId++;
    if (this.pending.size === 0) for (const x of this.workers) x.ref();
    return new Promise<JobResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, ...msg });
    });
  }

  private need(): SceneData {
    if (!this.scene) throw new Error('SplatRenderer: call setScene(gaussians) before rendering');
    return this.scene;
  }

  private parallel(cam: CamParams): boolean {
    return this.workers.length > 1 && cam.width * cam.height >= this.minParallelPixels;
  }

  /** Projection and binning over Gaussian ranges; returns the per-tile lists in shared memory. */
  private async bin(cam: CamParams, tileCull: boolean): Promise<{ P: Projected; tileStart: Int32Array; ids: Int32Array }> {
    const { g } = this.need(), W = this.workers.length, nT = cam.tilesX * cam.tilesY;
    const P = (this.P ??= allocProjected(g.count, true));
    const counts = new Int32Array(new SharedArrayBuffer(4 * W * nT));
    const range = (i: number) => [Math.floor((g.count * i) / W), Math.floor((g.count * (i + 1)) / W)];
    const res = await Promise.all(this.workers.map((w, i) => this.send(w, {
      job: { kind: 'project', cam, tileCull, P, counts: counts.subarray(i * nT, (i + 1) * nT), begin: range(i)[0], end: range(i)[1] },
    })));
    const pairs = res.reduce((a, r) => a + (r.pairs ?? 0), 0);
    // Worker i's entries for tile t go after those of workers < i: the lists stay in Gaussian index order.
    const tileStart = new Int32Array(new SharedArrayBuffer(4 * (nT + 1)));
    let pos = 0;
    for (let t = 0; t < nT; t++) {
      tileStart[t] = pos;
      for (let i = 0; i < W; i++) { const c = counts[i * nT + t]; counts[i * nT + t] = pos; pos += c; }
    }
    tileStart[nT] = pos;
    if (pos !== pairs) throw new Error(`internal: ${pairs} pairs counted, ${pos} binned`);
    if (this.ids.length < pairs) this.ids = new Int32Array(new SharedArrayBuffer(4 * Math.ceil(pairs * 1.25)));
    const ids = this.ids;
    await Promise.all(this.workers.map((w, i) => this.send(w, {
      job: { kind: 'scatter', cam, P, cursor: counts.subarray(i * nT, (i + 1) * nT), ids, begin: range(i)[0], end: range(i)[1] },
    })));
    return { P, tileStart, ids };
  }

  /** Renders one camera; the same image as `rasterize(scene, camera, opts)`. */
  render(camera: Camera, opts: RasterOptions = {}): Promise<RasterResult> {
    return this.serial(() => this.renderNow(camera, opts));
  }

  /** Runs tile-parallel calls one at a time: they share the projection and list buffers. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.then(() => undefined, () => undefined);
    return run;
  }

  private async renderNow(camera: Camera, opts: RasterOptions): Promise<RasterResult> {
    const scene = this.need();
    const cam = camParams(camera);
    const bg = resolveBackground(opts);
    if (!this.parallel(cam)) return runJob(scene, { kind: 'frame', cam, tileCull: opts.tileCull ?? true, bg, colorOnly: false }).image as RasterResult;
    const { P, tileStart, ids } = await this.bin(cam, opts.tileCull ?? true);
    const image = allocImage(cam.width, cam.height, true);
    const W = this.workers.length;
    await Promise.all(this.workers.map((w, i) => this.send(w, {
      job: { kind: 'tiles', cam, P, tileStart, ids, bg, image, worker: i, workers: W },
    })));
    return image;
  }

  /**
   * Renders many cameras, one whole frame per worker at a time, and calls `onFrame` in camera order (awaiting
   * it, so a slow consumer such as a video encoder applies back-pressure). With `colorOnly` the frames are
   * ColorResults (and with a `colorOnly` only known at run time, they are typed as such).
   */
  renderFrames(
    cameras: readonly Camera[], opts: FrameOptions & { colorOnly: true }, onFrame?: (index: number, image: ColorResult) => void | Promise<void>,
  ): Promise<void>;
  renderFrames(
    cameras: readonly Camera[], opts?: FrameOptions & { colorOnly?: false }, onFrame?: (index: number, image: RasterResult) => void | Promise<void>,
  ): Promise<void>;
  renderFrames(
    cameras: readonly Camera[], opts?: FrameOptions, onFrame?: (index: number, image: ColorResult) => void | Promise<void>,
  ): Promise<void>;
  async renderFrames(
    cameras: readonly Camera[], opts: FrameOptions = {}, onFrame: ((index: number, image: RasterResult) => void | Promise<void>) | ((index: number, image: ColorResult) => void | Promise<void>) = () => {},
  ): Promise<void> {
    // The overloads pair colorOnly with the matching frame type.
    const deliver = onFrame as (index: number, image: RasterResult | ColorResult) => void | Promise<void>;
    const scene = this.need();
    const bg = resolveBackground(opts);
    const tileCull = opts.tileCull ?? true, colorOnly = opts.colorOnly ?? false;
    const job = (camera: Camera): Job => ({ kind: 'frame', cam: camParams(camera), tileCull, bg, colorOnly });
    if (this.workers.length === 0) {
      for (let i = 0; i < cameras.length; i++) await deliver(i, runJob(scene, job(cameras[i])).image!);
      return;
    }
    const done = new Map<number, RasterResult | ColorResult>();
    let next = 0, delivered = 0;
    let failure: unknown = null;
    let wake: (() => void) | null = null;
    let progressed: Array<() => void> = [];
    const worker = async (w: Worker) => {
      while (next < cameras.length && failure === null) {
        const i = next++;
        try {
          const r = await this.send(w, { job: job(cameras[i]) });
          done.set(i, r.image!);
        } catch (err) { failure = err; }
        wake?.();
        // Do not run too far ahead of the consumer.
        while (failure === null && next - delivered > 2 * this.workers.length) await new Promise<void>((r) => progressed.push(r));
      }
    };
    const running = Promise.all(this.workers.map(worker));
    while (delivered < cameras.length && failure === null) {
      const img = done.get(delivered);
      if (!img) { await new Promise<void>((r) => { wake = r; }); wake = null; continue; }
      done.delete(delivered);
      try {
        await deliver(delivered, img);
      } catch (err) {
        failure = err;
      }
      delivered++;
      const waiting = progressed;
      progressed = [];
      for (const r of waiting) r();
    }
    for (const r of progressed) r();
    await running;
    if (failure !== null) throw failure;
  }

  /** Tile-parallel `rasterizeBackward` for the scene. */
  backward(camera: Camera, upstream: BackwardInput, opts: BackwardOptions = {}): Promise<GaussianGrads & { image: RasterResult }> {
    return this.serial(() => this.backwardNow(camera, upstream, opts));
  }

  private async backwardNow(camera: Camera, upstream: BackwardInput, opts: BackwardOptions): Promise<GaussianGrads & { image: RasterResult }> {
    const { g } = this.need();
    const cam = camParams(camera);
    if (!this.parallel(cam)) return this.original(rasterizeBackward(this.sceneSet!, camera, upstream, opts));
    checkUpstream(cam, upstream);
    const bg = resolveBackground(opts);
    const { P, tileStart, ids } = await this.bin(cam, opts.tileCull ?? true);
    const W = this.workers.length;
    const image = allocImage(cam.width, cam.height, true);
    const shareF = (a: Float32Array) => { const s = new Float32Array(new SharedArrayBuffer(a.byteLength)); s.set(a); return s; };
    const dRgb = shareF(upstream.dRgb), dAlpha = upstream.dAlpha ? shareF(upstream.dAlpha) : null;
    if (this.parts.length !== W) this.parts = this.workers.map(() => new Float64Array(new SharedArrayBuffer(72 * g.count)));
    const parts = this.parts;
    await Promise.all(this.workers.map((w, i) => this.send(w, {
      job: { kind: 'tiles', cam, P, tileStart, ids, bg, image, worker: i, workers: W, backward: { dRgb, dAlpha, grad2d: parts[i] } },
    })));
    const grads = allocGrads(g.count, g.shDegree, true);
    const range = (i: number) => [Math.floor((g.count * i) / W), Math.floor((g.count * (i + 1)) / W)];
    await Promise.all(this.workers.map((w, i) => this.send(w, {
      job: { kind: 'projectBackward', cam, parts, cudaJacobian: opts.cudaJacobian ?? false, grads, begin: range(i)[0], end: range(i)[1] },
    })));
    return this.original({ ...grads, image });
  }

  /** Gradients back in the caller's Gaussian order. */
  private original(r: GaussianGrads & { image: RasterResult }): GaussianGrads & { image: RasterResult } {
    const p = this.perm;
    if (!p) return r;
    const S = r.sh.length / p.length || 0;
    return {
      means: unpermute(r.means, p, 3), scales: unpermute(r.scales, p, 3), rotations: unpermute(r.rotations, p, 4),
      opacities: unpermute(r.opacities, p, 1), sh: unpermute(r.sh, p, S), image: r.image,
    };
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
