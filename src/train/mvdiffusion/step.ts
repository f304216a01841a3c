/**
 * The MV-diffusion TrainStep (spec mvdiffusion.md §6, `process_training_batch`): for B objects × V views,
 *   CLIP embedding of the input (resized straight to 224, normalised) → noise augmentation at level 0 → class label
 *   condition latent = VAE mode × 0.18215; target latents = VAE sample × 0.18215
 *   one timestep per object shared by its views; x_t = √ᾱ x₀ + √(1−ᾱ) ε; target v = √ᾱ ε − √(1−ᾱ) x₀ (or ε)
 *   condition dropout (drop as a whole: one draw per object; independent: one per view)
 *   loss = mean over items of min-SNR weight × mean over C·H·W of (UNet(x_t ‖ cond) − target)²
 * The frozen encoders' outputs of a sample (its CLIP embedding, the posterior mean/std of every view) are cached
 * per (sample, background); the random draws (timestep, dropout, posterior sample, noise) are a function of
 * (seed, pass, slot), so resumed runs reproduce them.
 */
import type { UNetConfig } from '../../diffusion/config.ts';
import { addNoise, velocity } from '../../diffusion/ddim.ts';
import { imageClassLabel, timestepEmbedding } from '../../diffusion/image-conditioning.ts';
import type { MvDiffusionPipeline } from '../../diffusion/pipeline.ts';
import { PhiloxNormal } from '../../diffusion/rng.ts';
import type { Provider } from '../../core/index.ts';
import { streamRng } from '../rng.ts';
import type { StepResult, TrainStep } from '../step.ts';
import { clipInput } from './clip-input.ts';
import type { MvTrainConfig } from './config.ts';
import type { MvItem } from './dataset.ts';
import { dropAsAWhole, minSnrWeight, weightedMse, type ConditionKeep } from './numerics.ts';
import { UNetGrad } from './unet-grad.ts';

const f32 = Math.fround;

/** What the frozen encoders give for one sample on one background. */
interface Encoded {
  /** CLIP image embedding [d] of the input view. */
  embed: Float32Array;
  /** Posterior mean and std of the input view [4, h, w] (unscaled). */
  inputMean: Float32Array;
  /** Posterior mean and std of each target slot [V, 4, h, w] (unscaled). */
  targetMean: Float32Array;
  targetStd: Float32Array;
}

export interface MvStepOptions {
  threads?: number;
  provider?: Provider;
  chunk?: number;
  /** Keep at most this many encoded samples (default 4096). */
  cacheEntries?: number;
}

export class MvDiffusionTrainStep implements TrainStep<MvItem[]> {
  readonly frozen = new Set<string>();
  readonly grads = new Map<string, Float32Array>();
  private readonly cache = new Map<string, Encoded>();
  /** Encoder passes saved by the cache so far (for the logs and the bench). */
  cacheHits = 0;

  private constructor(
    readonly cfg: MvTrainConfig,
    readonly pipe: MvDiffusionPipeline,
    readonly unetConfig: UNetConfig,
    readonly params: Map<string, Float32Array>,
    readonly shapes: ReadonlyMap<string, readonly number[]>,
    private readonly net: UNetGrad,
    private readonly opts: MvStepOptions,
  ) {}

  static async create(
    cfg: MvTrainConfig,
    pipe: MvDiffusionPipeline,
    unetConfig: UNetConfig,
    params: Map<string, Float32Array>,
    shapes: ReadonlyMap<string, readonly number[]>,
    opts: MvStepOptions = {},
  ): Promise<MvDiffusionTrainStep> {
    const net = await UNetGrad.create(unetConfig, params, {
      batch: cfg.batchSize * cfg.views,
      tokens: pipe.prompts.tokens,
      recompute: cfg.gradientCheckpointing,
      ...(opts.threads ? { threads: opts.threads } : {}),
      ...(opts.provider ? { provider: opts.provider } : {}),
      ...(opts.chunk ? { chunk: opts.chunk } : {}),
    });
    return new MvDiffusionTrainStep(cfg, pipe, unetConfig, params, shapes, net, opts);
  }

  /** torch.optim.AdamW decays every parameter of the reference's single group alike. */
  weightDecay(): number {
    return this.cfg.weightDecay;
  }

  private async encode(item: MvItem): Promise<Encoded> {
    const key = `${item.dir}|${item.background.join(',')}|${item.order.join(',')}`;
    const cacheable = this.cfg.cacheEncoderOutputs && !this.cfg.train.augmentation;
    const hit = cacheable ? this.cache.get(key) : undefined;
    if (hit) {
      this.cacheHits++;
      return hit;
    }
    const S = this.cfg.imageSize;
    const n = 3 * S * S;
    const clipSize = this.pipe.clipConfig.imageSize;
    const embed = await this.pipe.embedPixels(clipInput(item.input, S, clipSize, this.pipe.clipNormalization));
    const signed = (x: Float32Array) => Float32Array.from(x, (v) => f32(f32(2 * v) - 1));
    const input = await this.pipe.encodePosterior(signed(item.input));
    const V = this.cfg.views;
    const per = input.mean.length;
    const targetMean = new Float32Array(V * per);
    const targetStd = new Float32Array(V * per);
    for (let v = 0; v < V; v++) {
      const p = await this.pipe.encodePosterior(signed(item.targets.subarray(v * n, (v + 1) * n)));
      targetMean.set(p.mean, v * per);
      targetStd.set(p.std, v * per);
    }
    const enc = { embed, inputMean: input.mean, targetMean, targetStd };
    if (cacheable) {
      if (this.cache.size >= (this.opts.cacheEntries ?? 4096)) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, enc);
    }
    return enc;
  }

  /** The UNet feeds, targets and loss weights of a batch; draws come from the stream (label, pass, slot). */
  private async prepare(items: MvItem[], pass: number, stream: string) {
    const cfg = this.cfg;
    const c = this.unetConfig;
    const V = cfg.views;
    const B = cfg.batchSize;
    if (items.length > B) throw new Error(`batch of ${items.length} items for a step built for ${B}`);
    const h = c.sampleSize;
    const C = this.pipe.latentChannels;
    const per = C * h * h;
    const d = this.pipe.clipConfig.projectionDim;
    const sf = f32(this.pipe.vaeConfig.scalingFactor);
    const ac = this.pipe.schedule.alphasCumprod;
    const epsilonTarget = this.pipe.schedule.config.predictionType === 'epsilon';
    const { tokens, width } = this.pipe.prompts;
    const ctxPer = tokens * width;
    const N = B * V;
    const sample = new Float32Array(N * 2 * per);
    const target = new Float32Array(N * per);
    const classLabels = new Float32Array(N * 2 * d);
    const context = new Float32Array(N * ctxPer);
    const timesteps: number[] = [];
    const weights: number[] = [];
    let dropped = 0;

    // A short last batch is padded by repeating its items with zero loss weight (the graph has a fixed batch).
    for (let b = 0; b < B; b++) {
      const real = b < items.length;
      const item = items[real ? b : b % items.length]!;
      const enc = await this.encode(item);
      const rng = streamRng(cfg.seed, stream, pass, b);
      const t = rng.int(ac.length);
      const keeps: ConditionKeep[] = [];
      if (!cfg.useCfg || cfg.conditionDropRate <= 0)
        for (let v = 0; v < V; v++) keeps.push({ clip: true, latent: true });
      else if (cfg.dropType === 'drop_as_a_whole') {
        const k = dropAsAWhole(rng.next(), cfg.conditionDropRate);
        for (let v = 0; v < V; v++) keeps.push(k);
      } else for (let v = 0; v < V; v++) keeps.push(dropAsAWhole(rng.next(), cfg.conditionDropRate));
      const noise = new PhiloxNormal(Math.floor(rng.next() * 2 ** 32));
      const embeds = new Float32Array(V * d);
      for (let v = 0; v < V; v++) embeds.set(enc.embed, v * d);
      const { label } = imageClassLabel(embeds, d, this.pipe.imageNormalizer, this.pipe.level0, noise.normal([V, d]));
      const latentEps = noise.normal([V, C, h, h]);
      const eps = noise.normal([V, C, h, h]);
      const cond = cfg.scaleInputLatents ? enc.inputMean.map((m) => f32(m * sf)) : enc.inputMean;
      for (let v = 0; v < V; v++) {
        const r = b * V + v;
        const o = v * per;
        const x0 = new Float32Array(per);
        for (let i = 0; i < per; i++)
          x0[i] = f32(f32(enc.targetMean[o + i]! + f32(enc.targetStd[o + i]! * latentEps[o + i]!)) * sf);
        const e = eps.subarray(o, o + per);
        sample.set(addNoise(ac, x0, e, t), r * 2 * per);
        if (keeps[v]!.latent) sample.set(cond, r * 2 * per + per);
        target.set(epsilonTarget ? e : velocity(ac, x0, e, t), r * per);
        if (keeps[v]!.clip) classLabels.set(label.subarray(v * 2 * d, (v + 1) * 2 * d), r * 2 * d);
        const view = item.order[v]!;
        context.set(this.pipe.prompts.data.subarray(view * ctxPer, (view + 1) * ctxPer), r * ctxPer);
        timesteps.push(t);
        weights.push(real ? minSnrWeight(ac, t, cfg.snrGamma, cfg.snrWeighting) : 0);
        if (!keeps[v]!.clip || !keeps[v]!.latent) dropped++;
      }
    }
    // The reference averages over all B·V items; padding items carry weight 0 and are left out of the mean.
    const realItems = items.length * V;
    const lossWeights = weights.map((w) => (w * N) / realItems);
    const temb = timestepEmbedding(timesteps, c.blockOutChannels[0]!, {
      flipSinToCos: c.flipSinToCos,
      downscaleFreqShift: c.freqShift,
    });
    return {
      feeds: { sample, timestepEmbedding: temb, classLabels, context },
      target,
      lossWeights,
      timesteps,
      dropped: dropped / N,
    };
  }

  async run(items: MvItem[], pass: number, scale: number): Promise<StepResult> {
    const { feeds, target, lossWeights, timesteps, dropped } = await this.prepare(items, pass, 'mv-noise');
    // The trainer's accumulators (shared memory when it has optimizer threads) receive the gradients directly, so
    // the UNet's gradients are held once; a step used on its own gets plain ones.
    for (const [name, p] of this.params) if (!this.grads.has(name)) this.grads.set(name, new Float32Array(p.length));
    const r = await this.net.lossAndGrads(feeds, target, lossWeights, { addTo: this.grads, scale });
    return {
      loss: r.loss,
      metrics: { mse: r.mse, timestep: timesteps.reduce((a, x) => a + x, 0) / timesteps.length, dropped },
    };
  }

  /**
   * The training loss on `items` with draws fixed by `draw` (a held-out v-loss), next to the loss of predicting
   * 0 for every target (the floor a model must beat to have learnt anything).
   */
  async evaluate(items: MvItem[], draw: number): Promise<{ loss: number; zeroLoss: number }> {
    const { feeds, target, lossWeights } = await this.prepare(items, draw, 'mv-eval');
    const loss = await this.net.loss(feeds, target, lossWeights);
    return { loss, zeroLoss: weightedMse(new Float32Array(target.length), target, lossWeights).loss };
  }

  async close(): Promise<void> {
    await this.net.release();
  }
}
