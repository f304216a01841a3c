/**
 * The VAE's training step: images → encoder → a posterior sample (reparameterised: mean + std·ε) → decoder,
 * with loss = mean |x̂ − x| + w_mse · mean (x̂ − x)² + w_kl · KL, KL = ½ mean(μ² + σ² − 1 − log σ²)
 * over the latent (the per-value mean, so its weight does not depend on the image size). Forward, loss and backward are one
 * onnxruntime session; the batch is one sample's views.
 */
import {
  Graph,
  Session,
  abs,
  add,
  exp,
  lossAndParamGrads,
  mul,
  reduceMean,
  square,
  sub,
  type Tensor,
} from '../../core/index.ts';
import type { VaeConfig } from '../../diffusion/config.ts';
import { VaeDecoder, VaeEncoder } from '../../diffusion/vae.ts';
import { streamRng } from '../rng.ts';
import type { ParamStore, StepResult, TrainStep } from '../step.ts';

export interface VaeBatch {
  /** [N, 3, S, S] in [0, 1]. */
  images: Float32Array;
  count: number;
}

export interface VaeLossWeights {
  kl: number;
  mse: number;
}

export interface VaeGraph {
  loss: Tensor;
  l1: Tensor;
  mse: Tensor;
  kl: Tensor;
  recon: Tensor;
}

/** The training graph for `n` images of side `size` (inputs `x` in [−1, 1] and `eps`). */
export function vaeTrainGraph(g: Graph, cfg: VaeConfig, n: number, size: number, w: VaeLossWeights): VaeGraph {
  const f = 2 ** (cfg.blockOutChannels.length - 1);
  const x = g.input('x', [n, cfg.inChannels, size, size]);
  const eps = g.input('eps', [n, cfg.latentChannels, size / f, size / f]);
  const e = new VaeEncoder(g, cfg).forward(x);
  const z = add(e.mean, mul(e.std, eps));
  const recon = new VaeDecoder(g, cfg).forward(z);
  const d = sub(recon, x);
  const all = [0, 1, 2, 3];
  const l1 = reduceMean(abs(d), all);
  const mse = reduceMean(square(d), all);
  const kl = mul(reduceMean(sub(sub(add(square(e.mean), exp(e.logvar)), 1), e.logvar), all), 0.5);
  const loss = add(add(l1, mul(mse, w.mse)), mul(kl, w.kl));
  return { loss, l1, mse, kl, recon };
}

/** Normal draws for ε from the run's counter-based stream (a function of seed and pass: resume is exact). */
export function epsilonFor(seed: number, pass: number, length: number): Float32Array {
  const r = streamRng(seed, 'vae-eps', pass);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i += 2) {
    const rad = Math.sqrt(-2 * Math.log(1 - r.next()));
    const th = 2 * Math.PI * r.next();
    out[i] = rad * Math.cos(th);
    if (i + 1 < length) out[i + 1] = rad * Math.sin(th);
  }
  return out;
}

export class VaeTrainStep implements TrainStep<VaeBatch> {
  readonly frozen = new Set<string>();
  readonly grads: ParamStore = new Map();

  private constructor(
    readonly params: ParamStore,
    readonly shapes: ReadonlyMap<string, readonly number[]>,
    private readonly session: Session,
    private readonly n: number,
    private readonly size: number,
    private readonly latent: number,
    private readonly seed: number,
    private readonly decay: number,
  ) {}

  static async create(
    cfg: VaeConfig,
    params: ParamStore,
    shapes: ReadonlyMap<string, readonly number[]>,
    o: { images: number; size: number; weights: VaeLossWeights; seed: number; weightDecay: number; threads?: number },
  ): Promise<VaeTrainStep> {
    const g = new Graph('vae-train');
    const t = vaeTrainGraph(g, cfg, o.images, o.size, o.weights);
    const session = await Session.create(
      { ...lossAndParamGrads(t.loss), l1: t.l1, mse: t.mse, kl: t.kl },
      { params, memPattern: false, ...(o.threads ? { threads: o.threads } : {}) },
    );
    const f = 2 ** (cfg.blockOutChannels.length - 1);
    const latent = o.images * cfg.latentChannels * (o.size / f) ** 2;
    return new VaeTrainStep(params, shapes, session, o.images, o.size, latent, o.seed, o.weightDecay);
  }

  weightDecay(name: string): number {
    return (this.shapes.get(name)?.length ?? 1) > 1 ? this.decay : 0;
  }

  async run(batch: VaeBatch, pass: number, scale: number): Promise<StepResult> {
    if (batch.count !== this.n) throw new RangeError(`VAE step built for ${this.n} images, got ${batch.count}`);
    const x = new Float32Array(batch.images.length);
    for (let i = 0; i < x.length; i++) x[i] = 2 * batch.images[i]! - 1;
    const o = await this.session.run({ x, eps: epsilonFor(this.seed, pass, this.latent) });
    for (const [k, v] of Object.entries(o)) {
      if (!k.startsWith('grad/')) continue;
      const acc = this.grads.get(k.slice(5));
      if (!acc) continue;
      const g = v.data as Float32Array;
      for (let i = 0; i < g.length; i++) acc[i] = acc[i]! + scale * g[i]!;
    }
    const scalar = (k: string) => (o[k]!.data as Float32Array)[0]!;
    const mse = scalar('mse');
    return {
      loss: scalar('loss'),
      metrics: { l1: scalar('l1'), mse, kl: scalar('kl'), psnr: 10 * Math.log10(4 / Math.max(mse, 1e-12)) },
    };
  }

  get imageCount(): number {
    return this.n;
  }
  get imageSize(): number {
    return this.size;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
