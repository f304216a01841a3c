/**
 * The GS-LRM TrainStep (spec gslrm.md §2–7): input views → posed 9-channel patches → network (block-recomputed) →
 * Gaussians (hard pixel alignment) → renders at every target view (inputs included) → loss; then back through the
 * rasterizer (per view, on worker threads), the Gaussian decoding and the network. The chain rule crosses runtimes
 * explicitly: the loss gradient w.r.t. each render goes into the rasterizer backward, its Gaussian gradients into
 * the decoding's backward, and that into the network's vector-Jacobian graphs.
 */
import type { Camera } from '../../cameras/camera.ts';
import type { Provider } from '../../core/index.ts';
import { decodeGaussians } from '../../lrm/decode.ts';
import { gslrmParamSpec } from '../../lrm/params.ts';
import { computeRays, posedInput, type Rays } from '../../lrm/rays.ts';
import { UserError } from '../../util/errors.ts';
import { patchify, pixelGaussianOrder } from '../../lrm/tokens.ts';
import type { GaussianSet } from '../../splat/gaussians.ts';
import { allocGrads, type GaussianGrads } from '../../splat/project-backward.ts';
import { SplatRenderer } from '../../splat/renderer.ts';
import type { ParamStore, StepResult, TrainStep } from '../step.ts';
import { lossWeightsAt, type GslrmTrainConfig } from './config.ts';
import type { ViewSample } from './dataset.ts';
import { decodeGaussiansBackward } from './decode-backward.ts';
import { GslrmGradNetwork } from './network-grad.ts';
import { backgroundLoss, l2Loss, maskedL2Loss, pixelAlignLoss, pointsDistLoss, type ImageLoss } from './losses.ts';
import { VGG_PREFIX, vggSpec } from './perceptual.ts';

export interface GslrmStepOptions {
  /** Threads for onnxruntime and the rasterizer workers. */
  threads?: number;
  chunk?: number;
  /** Where the network runs (default 'cpu'); the rasterizer and image losses stay on the CPU. */
  provider?: Provider;
  /** Further image losses (perceptual, SSIM), each with its weight and warm-up. */
  imageLosses?: ImageLoss[];
}

/** What the last item of a pass looked like (for supervision images). */
export interface Supervision {
  size: number;
  /** [V, 3, S, S] targets and renders. */
  targets: Float32Array;
  renders: Float32Array;
  inputs: number;
}

export class GslrmTrainStep implements TrainStep<ViewSample[]> {
  readonly grads: ParamStore = new Map();
  /** The last item's targets and renders (kept for the trainer's supervision images). */
  lastSupervision: Supervision | null = null;
  readonly shapes: Map<string, readonly number[]>;

  private constructor(
    readonly cfg: GslrmTrainConfig,
    readonly params: ParamStore,
    readonly frozen: ReadonlySet<string>,
    private readonly net: GslrmGradNetwork,
    private readonly renderer: SplatRenderer,
    private readonly imageLosses: ImageLoss[],
  ) {
    this.shapes = new Map(gslrmParamSpec(cfg.model).map((s) => [s.key, s.shape]));
    for (const s of vggSpec()) if (params.has(s.key)) this.shapes.set(s.key, s.shape);
  }

  static async create(cfg: GslrmTrainConfig, params: ParamStore, opts: GslrmStepOptions = {}): Promise<GslrmTrainStep> {
    // Frozen: the fork's freeze_layers, and the perceptual loss's VGG-19 (kept in the state dict, as the reference).
    const frozen = frozenParams(cfg);
    for (const k of params.keys()) if (k.startsWith(VGG_PREFIX)) frozen.add(k);
    const net = await GslrmGradNetwork.create(cfg.model, params, {
      views: cfg.dataset.numInputViews,
      // 0: no checkpointing, as in the reference — every activation the backward reads is kept.
      ...(cfg.runtime.gradCheckpointEvery === 0 ? { keepActivations: 'all' as const } : {}),
      ...(opts.chunk ? { chunk: opts.chunk } : {}),
      ...(opts.threads ? { threads: opts.threads } : {}),
      ...(opts.provider ? { provider: opts.provider } : {}),
    });
    const renderer = await SplatRenderer.create(opts.threads ? { threads: opts.threads } : {});
    return new GslrmTrainStep(cfg, params, frozen, net, renderer, opts.imageLosses ?? []);
  }

  /** AdamW decay 0.05 (the config's) on tensors with ≥ 2 dimensions, none on LayerNorm weights (spec §8). */
  weightDecay(name: string): number {
    return (this.shapes.get(name)?.length ?? 1) >= 2 ? this.cfg.optimizer.weightDecay : 0;
  }

  async run(batch: ViewSample[], pass: number, scale: number): Promise<StepResult> {
    let loss = 0,
      l2 = 0,
      usage = 0;
    const extra: Record<string, number> = {};
    for (let b = 0; b < batch.length; b++) {
      const r = await this.item(batch[b]!, pass, scale / batch.length, b === batch.length - 1);
      loss += r.loss / batch.length;
      l2 += r.l2 / batch.length;
      usage += r.usage / batch.length;
      for (const [k, v] of Object.entries(r.extra)) extra[k] = (extra[k] ?? 0) + v / batch.length;
    }
    return { loss, metrics: { l2, psnr: -10 * Math.log10(l2), usage, ...extra } };
  }

  /** The sample's input views through the network and the decoding; the Gaussians become the renderer's scene. */
  private async reconstruct(s: ViewSample) {
    const nIn = this.cfg.dataset.numInputViews;
    const { imageSize: S, patch, nGlobal } = this.net.dims;
    const rays = computeRays(s.cameras.slice(0, nIn));
    const patches = patchify(posedInput(s.rgb.subarray(0, nIn * 3 * S * S), rays), nIn, 9, S, S, patch);
    const fwd = await this.net.forward(patches);
    const { gaussians } = decodeGaussians(fwd.raw, nGlobal, rays, patch);
    await this.renderer.setScene(gaussians);
    return { rays, patches, fwd, gaussians };
  }

  private async renderAll(cameras: readonly Camera[], S: number): Promise<Float32Array> {
    const plane = 3 * S * S;
    const renders = new Float32Array(cameras.length * plane);
    for (let v = 0; v < cameras.length; v++) renders.set((await this.renderer.render(cameras[v]!)).rgb, v * plane);
    return renders;
  }

  /** One sample: forward, loss, and the gradients of `weight`·loss added into `grads`. */
  private async item(s: ViewSample, pass: number, weight: number, keep: boolean) {
    const nIn = this.cfg.dataset.numInputViews;
    const dims = this.net.dims;
    const S = dims.imageSize;
    const plane = 3 * S * S;
    const { rays, patches, fwd, gaussians } = await this.reconstruct(s);
    const V = s.cameras.length;
    const renders = await this.renderAll(s.cameras, S);
    const seen = this.cfg.losses.clampRendering ? clamp01(renders) : renders;

    // The loss and its gradient w.r.t. the (possibly clamped) renders.
    const weights = lossWeightsAt(this.cfg, pass);
    const dSeen = new Float32Array(renders.length);
    // The fork's masked variants apply only where the images had an alpha channel (its `mask`).
    const mask = s.hasAlpha ? s.alpha : null;
    const l2 =
      this.cfg.losses.maskedL2 && mask
        ? maskedL2Loss(seen, s.rgb, mask, S, dSeen, weights.l2)
        : l2Loss(seen, s.rgb, dSeen, weights.l2);
    let loss = weights.l2 * l2;
    const extra: Record<string, number> = {};
    if (this.cfg.losses.backgroundWeight > 0 && mask) {
      const w = this.cfg.losses.backgroundWeight;
      extra.background = backgroundLoss(seen, this.cfg.losses.backgroundColor, mask, S, dSeen, w);
      loss += w * extra.background;
    }
    for (const il of this.imageLosses) {
      const w = weights[il.name];
      if (w === 0) continue;
      const value = await il.lossAndGrad(seen, s.rgb, V, S, dSeen, w, s.alpha);
      extra[il.name] = value;
      loss += w * value;
    }
    const dRender = this.cfg.losses.clampRendering ? maskClamped(dSeen, renders) : dSeen;
    for (let i = 0; i < dRender.length; i++) dRender[i] *= weight;

    const dG = allocGrads(gaussians.count, gaussians.shDegree);
    if (weights.pointsdist > 0) {
      const viewOf = pixelGaussianOrder(nIn, S, S, dims.patch).map((p) => Math.floor(p / (S * S)));
      const w = weights.pointsdist * weight;
      const pd = pointsDistLoss(gaussians.means, dims.nGlobal, viewOf, rays.origins, nIn, dG.means, w);
      extra.pointsdist = pd;
      loss += weights.pointsdist * pd;
    }
    if (this.cfg.losses.pixelalign > 0) {
      extra.pixelalign = this.pixelAlign(s, rays, gaussians.means, dG.means, this.cfg.losses.pixelalign * weight);
      loss += this.cfg.losses.pixelalign * extra.pixelalign;
    }
    for (let v = 0; v < V; v++) {
      addGrads(dG, await this.renderer.backward(s.cameras[v]!, { dRgb: dRender.subarray(v * plane, (v + 1) * plane) }));
    }
    const dRaw = decodeGaussiansBackward(fwd.raw, dims.nGlobal, rays, dims.patch, dG);
    await this.net.backward(patches, fwd, dRaw, this.grads, this.frozen);

    if (keep) this.lastSupervision = { size: S, targets: s.rgb, renders, inputs: nIn };
    let used = 0;
    for (let i = 0; i < gaussians.count; i++) if (1 / (1 + Math.exp(-gaussians.opacities[i]!)) > 0.05) used++;
    return { loss, l2, usage: used / gaussians.count, extra };
  }

  /**
   * The pixel-align term over the input views' pixel Gaussians; the mask (when `masked_pixelalign_loss`) is the
   * input views' alpha — the reference reshapes the targets' mask to the inputs' shape, which only works when every
   * view is an input.
   */
  private pixelAlign(s: ViewSample, rays: Rays, means: Float32Array, dMeans: Float32Array, w: number): number {
    const { imageSize: S, patch, nGlobal } = this.net.dims;
    const nIn = this.cfg.dataset.numInputViews, plane = S * S;
    const order = pixelGaussianOrder(nIn, S, S, patch);
    const viewOf = order.map((p) => Math.floor(p / plane));
    let mask: Float32Array | null = null;
    if (this.cfg.losses.maskedPixelalign) {
      if (!s.hasAlpha) {
        throw new UserError(`masked_pixelalign_loss needs views with alpha, but ${s.dir} has none (set training.losses.masked_pixelalign_loss=false)`);
      }
      mask = Float32Array.from(order, (p) => s.alpha[p]!);
    }
    const dirOf = (j: number): [number, number, number] => {
      const p = order[j]!, v = Math.floor(p / plane), q = v * 3 * plane + (p - v * plane);
      return [rays.directions[q]!, rays.directions[q + plane]!, rays.directions[q + 2 * plane]!];
    };
    return pixelAlignLoss(means, nGlobal, viewOf, rays.origins, dirOf, mask, dMeans, w);
  }

  /** No gradients: reconstructs from the sample's input views and renders at `targets` (validation, evaluation). */
  async predict(s: ViewSample, targets: readonly Camera[]): Promise<{ renders: Float32Array; gaussians: GaussianSet }> {
    const { gaussians } = await this.reconstruct(s);
    return { renders: await this.renderAll(targets, this.net.dims.imageSize), gaussians };
  }

  async close(): Promise<void> {
    for (const l of this.imageLosses) await l.release?.();
    await this.net.release();
    await this.renderer.close();
  }
}

/** The fork's `freeze_layers` (spec mouse.md §8.1): frozen parameters get no gradient and no update. */
export function frozenParams(cfg: GslrmTrainConfig): Set<string> {
  const out = new Set<string>();
  const f = cfg.freeze;
  if (!f.enabled) return out;
  for (const s of gslrmParamSpec(cfg.model)) {
    const m = /^transformer_layers\.(\d+)\./.exec(s.key);
    if (m && Number(m[1]) < f.transformerUntil) out.add(s.key);
    if (f.patchEmbedder && (s.key.startsWith('patch_embedder.') || s.key.startsWith('input_layer_norm.')))
      out.add(s.key);
    if (f.positionalEmbeddings && s.key === 'gaussian_position_embeddings') out.add(s.key);
  }
  return out;
}

function addGrads(acc: GaussianGrads, g: GaussianGrads): void {
  for (const k of ['means', 'scales', 'rotations', 'opacities', 'sh'] as const) {
    const a = acc[k],
      b = g[k];
    for (let i = 0; i < a.length; i++) a[i] += b[i]!;
  }
}

function clamp01(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.min(1, Math.max(0, x[i]!));
  return out;
}

/** torch.clamp's gradient: passes where min ≤ x ≤ max. */
function maskClamped(d: Float32Array, x: Float32Array): Float32Array {
  for (let i = 0; i < d.length; i++) if (x[i]! < 0 || x[i]! > 1) d[i] = 0;
  return d;
}
