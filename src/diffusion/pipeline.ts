/**
 * FaceLift's multi-view diffusion pipeline (spec pipeline.md §4, mvdiffusion.md §4 and §8; the reference is its
 * `StableUnCLIPImg2ImgPipeline` called as `inference.py` does): one 512² RGB portrait → 6 views.
 *
 *   CLIP image embedding → noise augmentation at level 0 → class label [V, 2048]
 *   VAE mode × 0.18215 of the (fp16-rounded) input → condition latent [V, 4, 64, 64]
 *   latents ~ N(0, I); per DDIM step: UNet on [latents ‖ condition] (CFG: uncond half has zero label and
 *   zero condition latent), guidance u + s(c − u), DDIM v-prediction step with η
 *   decode(latents / 0.18215) → clamp(x/2 + 0.5) → uint8 (round half to even)
 *
 * `sample()` is a generator that yields after every step (progress bars, web events and tests all use it).
 * Random draws come from a NoiseSource in the reference's order: image_embeds [V, d], latents, one per step
 * when η > 0 — so a recorded run can be replayed exactly.
 */
import { join } from 'node:path';
import { Graph, Session, cast, fromHalf, toHalf, type ParamStore, type Provider, type Tensor } from '../core/index.ts';
import { UserError } from '../util/errors.ts';
import { ClipVision } from './clip.ts';
import { declareClipVisionParams } from './clip-params.ts';
import { clipPixelValues, parseClipPreprocessConfig, type ClipPreprocessConfig, type RgbImage } from './clip-preprocess.ts';
import {
  parseClipVisionConfig, parseImageNormalizerConfig, parseUNetConfig, parseVaeConfig, readComponentConfig, readModelIndex,
  type ClipVisionConfig, type UNetConfig, type VaeConfig,
} from './config.ts';
import { ddimSchedule, ddimStep, ddimStepScalars, ddimTimesteps, guide, type DdimSchedule } from './ddim.ts';
import { MultistepSampler, type MultistepKind } from './multistep.ts';
import { imageClassLabel, noiseLevelZero, timestepEmbedding, type NoiseLevelZero } from './image-conditioning.ts';
import { readSchedulerConfig } from './noise-schedule.ts';
import { paramSpecs, type ParamDeclarer } from './params.ts';
import { computePromptEmbeds, loadPromptEmbeds, type PromptEmbeds } from './prompt-embeds.ts';
import { PhiloxNormal, type NoiseSource } from './rng.ts';
import { MultiViewUNet, unetInputs, type AttentionOptions } from './unet.ts';
import { declareUNetParams } from './unet-params.ts';
import { VaeDecoder, VaeEncoder } from './vae.ts';
import { declareVaeParams } from './vae-params.ts';
import { JsonFields } from './json-fields.ts';
import { loadWeights } from './weights.ts';

const f32 = Math.fround;

/** The sampler of the diffusion loop. */
export type Scheduler = 'ddim' | MultistepKind;
export const SCHEDULERS: readonly Scheduler[] = ['ddim', 'dpmpp2m', 'unipc'];
/**
 * Steps per sampler when none are given: FaceLift's DDIM at its 50; the multistep solvers at 20, where they score
 * within DDIM-50's seed-to-seed spread against ground truth (BENCHMARKS.md § sampler-quality).
 */
export const DEFAULT_STEPS: Readonly<Record<Scheduler, number>> = { ddim: 50, dpmpp2m: 20, unipc: 20 };
/**
 * The sampler of `facelift infer`, the web app and the queue when none is chosen (this class's own `sample()` keeps
 * FaceLift's DDIM, which the golden tests pin).
 */
export const DEFAULT_SCHEDULER: Scheduler = 'dpmpp2m';

export interface SampleOptions {
  /** Sampling steps (UNet evaluations), 1–1000 (default: the scheduler's `DEFAULT_STEPS`, DDIM's 50). */
  steps?: number;
  /** DDIM (FaceLift's, default) or a deterministic multistep sampler (multistep.ts). */
  scheduler?: Scheduler;
  /** Classifier-free guidance scale (default 3); exactly 1 disables CFG (single batch). */
  guidanceScale?: number;
  /** DDIM η (default 1.0: stochastic, as FaceLift). */
  eta?: number;
  /** Seed of the default Philox noise (default 4, FaceLift's). Ignored when `noise` is given. */
  seed?: number;
  noise?: NoiseSource;
}

/** What the generator yields after each DDIM step. Arrays are [V, 4, h, w] unless noted. */
export interface StepEvent {
  step: number;
  total: number;
  timestep: number;
  /** Raw UNet output [N, 4, h, w] (N = 2V with CFG). */
  unetOutput: Float32Array;
  modelOutput: Float32Array;
  predOriginalSample: Float32Array;
  latents: Float32Array;
}

export interface SampleResult {
  /** [N, 2d] as fed to the UNet. */
  classLabels: Float32Array;
  /** [N, 4, h, w] as concatenated into the UNet input. */
  imageLatents: Float32Array;
  latents: Float32Array;
  /** Raw decoder output [V, 3, H, W]. */
  decoded: Float32Array;
  /** The V output views, in the order front, front_right, right, back, left, front_left. */
  images: RgbImage[];
}

export interface PipelineOptions {
  /** clr_embeds.pt; without it the embeddings are computed from the pipeline's text_encoder/ + tokenizer/. */
  promptEmbeds?: string;
  /** Where computed prompt embeddings are cached (default: not cached). */
  cacheDir?: string;
  /** Keep the UNet weights as fp16 (half the memory) and compute in fp32 (weights cast at use). */
  unetFp16Weights?: boolean;
  /** Linear layers (UNet, image encoder, VAE attention) in int8; convolutions stay fp32 (core/quantize.ts). */
  int8?: boolean;
  /** UNet attention blocks (memory bound / fused kernel). */
  attention?: AttentionOptions;
  threads?: number;
  /** Execution provider of every session (default 'auto': CUDA when onnxruntime-node's CUDA library is there). */
  provider?: Provider | 'auto';
  /**
   * A UNet held in memory instead of the folder's `unet/` (a trainer's weights; the folder may then be a base
   * pipeline whose UNet has another layout). The arrays are read at every step, so updates in place are seen.
   */
  unet?: { config: UNetConfig; weights: ParamStore };
}

/** The loaded pipeckpts/ folder: configs, weights, lazily created sessions. */
export class MvDiffusionPipeline {
  private sessions = new Map<string, Session>();

  private constructor(
    readonly dir: string,
    readonly unetConfig: UNetConfig,
    readonly vaeConfig: VaeConfig,
    readonly clipConfig: ClipVisionConfig,
    readonly preprocess: ClipPreprocessConfig,
    readonly schedule: DdimSchedule,
    readonly level0: NoiseLevelZero,
    private readonly normalizer: { mean: Float32Array; std: Float32Array },
    private readonly weights: { unet: ParamStore; vae: ParamStore; clip: ParamStore },
    readonly prompts: PromptEmbeds,
    private readonly opts: PipelineOptions,
  ) {}

  static async load(dir: string, opts: PipelineOptions = {}): Promise<MvDiffusionPipeline> {
    readModelIndex(dir, { anyUnet: opts.unet !== undefined });
    const unetConfig = opts.unet?.config ?? readComponentConfig(dir, 'unet', parseUNetConfig);
    const vaeConfig = readComponentConfig(dir, 'vae', parseVaeConfig);
    const clipConfig = readComponentConfig(dir, 'image_encoder', parseClipVisionConfig);
    const preprocess = parseClipPreprocessConfig(JsonFields.fromFile(join(dir, 'feature_extractor/preprocessor_config.json'), 'feature_extractor/preprocessor_config.json'));
    const schedule = ddimSchedule(readSchedulerConfig(join(dir, 'scheduler/scheduler_config.json'), 'scheduler/scheduler_config.json', 'DDIMScheduler'));
    const level0 = noiseLevelZero(readSchedulerConfig(join(dir, 'image_noising_scheduler/scheduler_config.json'), 'image_noising_scheduler/scheduler_config.json', 'DDPMScheduler'));
    const normDim = readComponentConfig(dir, 'image_normalizer', parseImageNormalizerConfig).embeddingDim;
    if (unetConfig.inChannels !== 2 * vaeConfig.latentChannels || unetConfig.outChannels !== vaeConfig.latentChannels) {
      throw new UserError(`${dir}: the UNet takes ${unetConfig.inChannels} and gives ${unetConfig.outChannels} channels; the VAE's latent has ` +
        `${vaeConfig.latentChannels} (the UNet must take twice that: noisy latent ‖ condition latent, and give it back)`);
    }
    if (normDim !== clipConfig.projectionDim || 2 * normDim !== unetConfig.classEmbedInputDim) {
      throw new UserError(`${dir}: image_normalizer has ${normDim} dims, image_encoder projects to ${clipConfig.projectionDim}, the UNet's class input is ${unetConfig.classEmbedInputDim} (must be 2×)`);
    }
    if (preprocess.cropHeight !== clipConfig.imageSize || preprocess.cropWidth !== clipConfig.imageSize) {
      throw new UserError(`${dir}: feature_extractor crops to ${preprocess.cropWidth}×${preprocess.cropHeight} but image_encoder expects ${clipConfig.imageSize}²`);
    }
    const normStore = await loadWeights(join(dir, 'image_normalizer'), [{ name: 'mean', shape: [1, normDim] }, { name: 'std', shape: [1, normDim] }], 'image_normalizer');
    const weights = {
      unet: opts.unet?.weights ?? await loadWeights(join(dir, 'unet'), paramSpecs((d) => declareUNetParams(d, unetConfig)), 'unet', { dtype: opts.unetFp16Weights ? 'float16' : 'float32' }),
      vae: await loadWeights(join(dir, 'vae'), paramSpecs((d) => declareVaeParams(d, vaeConfig)), 'vae'),
      clip: await loadWeights(join(dir, 'image_encoder'), paramSpecs((d) => declareClipVisionParams(d, clipConfig)), 'image_encoder'),
    };
    const expect = { views: unetConfig.numViews, width: unetConfig.crossAttentionDim };
    const prompts = opts.promptEmbeds
      ? await loadPromptEmbeds(opts.promptEmbeds, expect)
      : await computePromptEmbeds(dir, { ...(opts.cacheDir ? { cacheDir: opts.cacheDir } : {}), ...(opts.threads ? { threads: opts.threads } : {}) });
    if (prompts.views !== expect.views || prompts.width !== expect.width) {
      throw new UserError(`${dir}: the text encoder gives [${prompts.views}, ${prompts.tokens}, ${prompts.width}] prompt embeddings, the UNet needs [${expect.views}, tokens, ${expect.width}]`);
    }
    return new MvDiffusionPipeline(dir, unetConfig, vaeConfig, clipConfig, preprocess, schedule, level0,
      { mean: normStore.get('mean') as Float32Array, std: normStore.get('std') as Float32Array }, weights, prompts, opts);
  }

  /** Channels of the VAE's latent (4 for SD's VAE); the UNet takes twice as many (noisy ‖ condition). */
  get latentChannels(): number {
    return this.vaeConfig.latentChannels;
  }

  /** Image side the pipeline works at (8 × UNet sample size; 512 for the official model). */
  get imageSize(): number {
    return 8 * this.unetConfig.sampleSize;
  }

  private async session(key: string, build: (g: Graph) => Record<string, Tensor>, params: ParamStore): Promise<Session> {
    let s = this.sessions.get(key);
    if (!s) {
      const g = new Graph(key);
      // The UNet step dominates memory: without the arena and memory pattern its peak fell from 15.1 to 9.3 GiB at
      // batch 12 with no measurable change in step time (bench/unet.ts), which keeps sampling inside 24 GiB.
      s = await Session.create(build(g), {
        params, arena: false, memPattern: false, ...(this.opts.threads ? { threads: this.opts.threads } : {}),
        ...(this.opts.int8 ? { int8: true } : {}), ...(this.opts.provider ? { provider: this.opts.provider } : {}),
      });
      this.sessions.set(key, s);
    }
    return s;
  }

  /** CLIP image embedding [projection_dim] of one image. */
  async imageEmbedding(image: RgbImage): Promise<Float32Array> {
    return this.embedPixels(clipPixelValues(image, this.preprocess).pixels);
  }

  /** CLIP image embedding of pixel values already resized and normalised [1, 3, S, S] (S = the encoder's size). */
  async embedPixels(pixels: Float32Array): Promise<Float32Array> {
    const S = this.clipConfig.imageSize;
    const s = await this.session('clip', (g) => ({ embeds: new ClipVision(g, this.clipConfig).forward(g.input('pixels', [1, 3, S, S])) }), this.weights.clip);
    return (await s.run({ pixels })).embeds!.data as Float32Array;
  }

  /** The CLIP processor's per-channel mean and std (images are normalised with them). */
  get clipNormalization(): { mean: readonly number[]; std: readonly number[] } {
    return { mean: this.preprocess.mean, std: this.preprocess.std };
  }

  /** The image normaliser's learned statistics (used around the CLIP-embedding noise augmentation). */
  get imageNormalizer(): { mean: Float32Array; std: Float32Array } {
    return this.normalizer;
  }

  /** The VAE posterior of one image [1, 3, H, W] in [−1, 1]: mean and std [4, h, w], not scaled. */
  async encodePosterior(x: Float32Array): Promise<{ mean: Float32Array; std: Float32Array }> {
    const H = this.imageSize;
    const s = await this.session('vae-posterior', (g) => {
      const e = new VaeEncoder(g, this.vaeConfig).forward(g.input('x', [1, 3, H, H]));
      return { mean: e.mean, std: e.std };
    }, this.weights.vae);
    const o = await s.run({ x });
    return { mean: o.mean!.data as Float32Array, std: o.std!.data as Float32Array };
  }

  /** VAE posterior mode × scaling_factor [4, h, w] of one image (its [−1, 1] pixels rounded to fp16 first, as the reference). */
  async conditionLatent(image: RgbImage): Promise<Float32Array> {
    const H = this.imageSize;
    const x = new Float32Array(3 * H * H);
    for (let i = 0; i < H * H; i++) {
      for (let c = 0; c < 3; c++) x[c * H * H + i] = fromHalf(toHalf(f32(f32(2 * f32(image.data[i * 3 + c]! / 255)) - 1)));
    }
    const s = await this.session('vae-encoder', (g) => ({ mean: new VaeEncoder(g, this.vaeConfig).forward(g.input('x', [1, 3, H, H])).mean }), this.weights.vae);
    const mean = (await s.run({ x })).mean!.data as Float32Array;
    const sf = f32(this.vaeConfig.scalingFactor);
    return Float32Array.from(mean, (m) => f32(m * sf));
  }

  /** Decodes scaled latents [V, C, h, w] one view at a time (bounded memory) → raw images [V, 3, H, W]. */
  async decode(latents: Float32Array): Promise<Float32Array> {
    const h = this.unetConfig.sampleSize;
    const C = this.latentChannels;
    const per = C * h * h;
    const V = latents.length / per;
    const H = this.imageSize;
    const s = await this.session('vae-decoder', (g) => ({ image: new VaeDecoder(g, this.vaeConfig).forward(g.input('z', [1, C, h, h])) }), this.weights.vae);
    const sf = f32(this.vaeConfig.scalingFactor);
    const out = new Float32Array(V * 3 * H * H);
    for (let v = 0; v < V; v++) {
      const z = Float32Array.from(latents.subarray(v * per, (v + 1) * per), (l) => f32(l / sf));
      out.set((await s.run({ z })).image!.data as Float32Array, v * 3 * H * H);
    }
    return out;
  }

  private async unet(batch: number): Promise<Session> {
    const c = this.unetConfig;
    const build = (g: Graph) => {
      const declarer: ParamDeclarer<Tensor> = this.opts.unetFp16Weights ? { param: (name, shape) => cast(g.param(name, shape, 'float16'), 'float32') } : g;
      const unet = new MultiViewUNet(g, c, this.opts.attention ?? {}, declarer);
      return { noise_pred: unet.forward(unetInputs(g, c, batch, c.sampleSize, this.prompts.tokens)) };
    };
    return this.session(`unet-${batch}`, build, this.weights.unet);
  }

  /** Runs the sampler, yielding after every DDIM step; returns the views. */
  async *sample(image: RgbImage, opts: SampleOptions = {}): AsyncGenerator<StepEvent, SampleResult, void> {
    const scheduler = opts.scheduler ?? 'ddim';
    const steps = opts.steps ?? DEFAULT_STEPS[scheduler];
    const scale = opts.guidanceScale ?? 3;
    const eta = opts.eta ?? 1;
    if (!Number.isFinite(scale) || scale <= 0) throw new UserError(`guidance scale must be a positive number, got ${scale}`);
    if (!Number.isFinite(eta) || eta < 0) throw new UserError(`eta must be ≥ 0, got ${eta}`);
    const H = this.imageSize;
    if (image.width !== H || image.height !== H) throw new UserError(`the conditioning image must be ${H}×${H} (the UNet's sample size × 8), got ${image.width}×${image.height}`);
    const multistep = scheduler === 'ddim' ? null : new MultistepSampler(scheduler, this.schedule.config, steps);
    const timesteps = multistep ? multistep.timesteps : ddimTimesteps(this.schedule, steps);
    const noise = opts.noise ?? new PhiloxNormal(opts.seed ?? 4);
    const c = this.unetConfig;
    const V = c.numViews;
    const d = this.clipConfig.projectionDim;
    const h = c.sampleSize;
    const C = this.latentChannels;
    const per = C * h * h;
    const cfg = scale !== 1;
    const N = cfg ? 2 * V : V;

    const embed = await this.imageEmbedding(image);
    const embeds = new Float32Array(V * d);
    for (let v = 0; v < V; v++) embeds.set(embed, v * d);
    const { label } = imageClassLabel(embeds, d, this.normalizer, this.level0, noise.normal([V, d], 'image_embeds'));
    const lat = await this.conditionLatent(image);
    const classLabels = new Float32Array(N * 2 * d);
    classLabels.set(label, cfg ? V * 2 * d : 0);
    const imageLatents = new Float32Array(N * per);
    for (let v = 0; v < V; v++) imageLatents.set(lat, ((cfg ? V : 0) + v) * per);
    const ctxPer = this.prompts.tokens * this.prompts.width;
    const context = new Float32Array(N * ctxPer);
    for (let r = 0; r < N; r++) context.set(this.prompts.data.subarray((r % V) * ctxPer, (r % V + 1) * ctxPer), r * ctxPer);

    let latents = noise.normal([V, C, h, h], 'latents');
    const session = await this.unet(N);
    for (let i = 0; i < timesteps.length; i++) {
      const t = timesteps[i]!;
      const sample = new Float32Array(N * 2 * per);
      for (let r = 0; r < N; r++) {
        sample.set(latents.subarray((r % V) * per, (r % V + 1) * per), r * 2 * per);
        sample.set(imageLatents.subarray(r * per, (r + 1) * per), r * 2 * per + per);
      }
      const out = (await session.run({
        sample,
        timestep_embedding: timestepEmbedding(new Array(N).fill(t), c.blockOutChannels[0]!, { flipSinToCos: c.flipSinToCos, downscaleFreqShift: c.freqShift }),
        class_labels: classLabels,
        encoder_hidden_states: context,
      })).noise_pred!.data as Float32Array;
      const modelOutput = cfg ? guide(out.subarray(0, V * per), out.subarray(V * per), scale) : out;
      let predOriginalSample: Float32Array;
      if (multistep) {
        const r = multistep.step(modelOutput, latents);
        latents = Float32Array.from(r.prevSample);
        predOriginalSample = Float32Array.from(r.predOriginalSample);
      } else {
        const sc = ddimStepScalars(this.schedule, t, steps, eta);
        const z = eta > 0 ? noise.normal([V, C, h, h], 'step') : undefined;
        const r = ddimStep(this.schedule, sc, modelOutput, latents, z);
        latents = r.prevSample;
        predOriginalSample = r.predOriginalSample;
      }
      yield { step: i, total: steps, timestep: t, unetOutput: out, modelOutput, predOriginalSample, latents };
    }
    const decoded = await this.decode(latents);
    return { classLabels, imageLatents, latents, decoded, images: toImages(decoded, V, H) };
  }

  /** Runs `sample` to the end, calling `onStep` after each step. */
  async generate(image: RgbImage, opts: SampleOptions = {}, onStep?: (e: StepEvent) => void): Promise<SampleResult> {
    const it = this.sample(image, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
      onStep?.(r.value);
    }
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await s.release();
    this.sessions.clear();
  }
}

/** Round half to even, as numpy's `round`. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** clamp(x/2 + 0.5, 0, 1) → uint8 HWC per view (diffusers' VaeImageProcessor.postprocess to PIL). */
export function toImages(decoded: Float32Array, views: number, size: number): RgbImage[] {
  const hw = size * size;
  return Array.from({ length: views }, (_, v) => {
    const data = new Uint8Array(hw * 3);
    for (let i = 0; i < hw; i++) {
      for (let c = 0; c < 3; c++) {
        const x = Math.min(1, Math.max(0, f32(f32(decoded[(v * 3 + c) * hw + i]! / 2) + 0.5)));
        data[i * 3 + c] = roundHalfEven(f32(x * 255));
      }
    }
    return { width: size, height: size, data };
  });
}
