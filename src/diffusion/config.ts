/**
 * Typed readers for the config files of the official `pipeckpts/` folder (diffusers / transformers layout):
 * `unet/config.json`, `vae/config.json`, `image_encoder/config.json`, `text_encoder/config.json`,
 * `image_normalizer/config.json` and `model_index.json`. Scheduler and preprocessor configs are read in
 * `ddim.ts` / `clip-preprocess.ts`, next to the code that uses them.
 *
 * Field names mirror the official keys. A field that changes the network is required; a field naming a feature
 * facelift-ts does not implement must be absent or hold the official value (e.g. `resnet_time_scale_shift`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.ts';
import { JsonFields } from './json-fields.ts';

/** `UNetMV2DConditionModel` (FaceLift's multi-view UNet; spec mvdiffusion.md §2). */
export interface UNetConfig {
  sampleSize: number;
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  /** Number of attention heads per level (diffusers' `attention_head_dim` is the head count here). */
  heads: number[];
  crossAttentionDim: number;
  normNumGroups: number;
  normEps: number;
  flipSinToCos: boolean;
  freqShift: number;
  /** Input width of the `projection` class embedding (2048 = image embedding ‖ noise-level embedding). */
  classEmbedInputDim: number;
  numViews: number;
  /** sparse = keys/values of [front view ‖ own view] (what was trained); dense = all views; none = per view. */
  multiViewAttention: 'sparse' | 'dense' | 'none';
  upcastAttention: boolean;
}

const DOWN_TYPES = ['CrossAttnDownBlockMV2D', 'CrossAttnDownBlockMV2D', 'CrossAttnDownBlockMV2D', 'DownBlock2D'];
const UP_TYPES = ['UpBlock2D', 'CrossAttnUpBlockMV2D', 'CrossAttnUpBlockMV2D', 'CrossAttnUpBlockMV2D'];

export function parseUNetConfig(f: JsonFields): UNetConfig {
  const downTypes = f.strArray('down_block_types');
  const upTypes = f.strArray('up_block_types');
  if (JSON.stringify(downTypes) !== JSON.stringify(DOWN_TYPES) || JSON.stringify(upTypes) !== JSON.stringify(UP_TYPES)) {
    throw new UserError(`${f.label}: block types must be down ${JSON.stringify(DOWN_TYPES)} and up ${JSON.stringify(UP_TYPES)} (the FaceLift layout), found down ${JSON.stringify(downTypes)}, up ${JSON.stringify(upTypes)}`);
  }
  f.oneOf('mid_block_type', ['UNetMidBlockMV2DCrossAttn']);
  const blockOutChannels = f.intArray('block_out_channels', 4);
  const rawHeads = f.raw('attention_head_dim');
  const heads = typeof rawHeads === 'number' ? blockOutChannels.map(() => f.int('attention_head_dim')) : f.intArray('attention_head_dim', 4);
  f.fixed('num_attention_heads', null);
  const normNumGroups = f.int('norm_num_groups');
  blockOutChannels.forEach((c, i) => {
    if (c % heads[i] !== 0) throw new UserError(`${f.label}: block_out_channels[${i}] = ${c} is not divisible by attention_head_dim[${i}] = ${heads[i]} (heads)`);
    if (c % normNumGroups !== 0) throw new UserError(`${f.label}: block_out_channels[${i}] = ${c} is not divisible by norm_num_groups = ${normNumGroups}`);
  });
  f.oneOf('act_fn', ['silu']);
  f.oneOf('class_embed_type', ['projection']);
  f.fixed('class_embeddings_concat', false);
  f.fixed('transformer_layers_per_block', 1);
  f.fixed('use_linear_projection', true);
  f.fixed('only_cross_attention', false);
  f.fixed('dual_cross_attention', false);
  f.fixed('center_input_sample', false);
  f.fixed('downsample_padding', 1);
  f.fixed('mid_block_scale_factor', 1);
  f.fixed('resnet_time_scale_shift', 'default');
  f.fixed('resnet_skip_time_act', false);
  f.fixed('resnet_out_scale_factor', 1);
  f.fixed('time_embedding_type', 'positional');
  f.fixed('time_embedding_dim', null);
  f.fixed('time_embedding_act_fn', null);
  f.fixed('timestep_post_act', null);
  f.fixed('time_cond_proj_dim', null);
  f.fixed('conv_in_kernel', 3);
  f.fixed('conv_out_kernel', 3);
  f.fixed('encoder_hid_dim', null);
  f.fixed('addition_embed_type', null);
  f.fixed('num_class_embeds', null);
  f.fixed('cd_attention_last', false);
  f.fixed('cd_attention_mid', false);
  f.fixed('addition_downsample', false);
  f.oneOf('selfattn_block', ['custom'], 'custom');
  const multiview = f.bool('multiview_attention');
  const sparse = f.bool('sparse_mv_attention');
  return {
    sampleSize: f.int('sample_size'),
    inChannels: f.int('in_channels'),
    outChannels: f.int('out_channels'),
    blockOutChannels,
    layersPerBlock: f.int('layers_per_block'),
    heads,
    crossAttentionDim: f.int('cross_attention_dim'),
    normNumGroups,
    normEps: f.num('norm_eps'),
    flipSinToCos: f.bool('flip_sin_to_cos'),
    freqShift: f.num('freq_shift'),
    classEmbedInputDim: f.int('projection_class_embeddings_input_dim'),
    numViews: f.int('num_views'),
    multiViewAttention: !multiview ? 'none' : sparse ? 'sparse' : 'dense',
    upcastAttention: f.bool('upcast_attention', false),
  };
}

/** `AutoencoderKL` (SD-2.1 VAE). */
export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  normNumGroups: number;
  sampleSize: number;
  scalingFactor: number;
  midBlockAttention: boolean;
}

export function parseVaeConfig(f: JsonFields): VaeConfig {
  const blockOutChannels = f.intArray('block_out_channels');
  const n = blockOutChannels.length;
  const down = f.strArray('down_block_types', n);
  const up = f.strArray('up_block_types', n);
  if (!down.every((t) => t === 'DownEncoderBlock2D') || !up.every((t) => t === 'UpDecoderBlock2D')) {
    throw new UserError(`${f.label}: expected ${n}× DownEncoderBlock2D / ${n}× UpDecoderBlock2D, found ${JSON.stringify(down)} / ${JSON.stringify(up)}`);
  }
  f.oneOf('act_fn', ['silu']);
  f.fixed('use_quant_conv', true);
  f.fixed('use_post_quant_conv', true);
  f.fixed('shift_factor', null);
  f.fixed('latents_mean', null);
  f.fixed('latents_std', null);
  const normNumGroups = f.int('norm_num_groups');
  for (const c of blockOutChannels) {
    if (c % normNumGroups !== 0) throw new UserError(`${f.label}: block_out_channels ${c} is not divisible by norm_num_groups ${normNumGroups}`);
  }
  return {
    inChannels: f.int('in_channels'),
    outChannels: f.int('out_channels'),
    latentChannels: f.int('latent_channels'),
    blockOutChannels,
    layersPerBlock: f.int('layers_per_block'),
    normNumGroups,
    sampleSize: f.int('sample_size'),
    scalingFactor: f.num('scaling_factor'),
    midBlockAttention: f.bool('mid_block_add_attention', true),
  };
}

/** transformers `CLIPVisionConfig` (+ `projection_dim` of `CLIPVisionModelWithProjection`). */
export interface ClipVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numChannels: number;
  imageSize: number;
  patchSize: number;
  projectionDim: number;
  hiddenAct: 'gelu' | 'quick_gelu';
  layerNormEps: number;
}

export function parseClipVisionConfig(f: JsonFields): ClipVisionConfig {
  f.oneOf('model_type', ['clip_vision_model'], 'clip_vision_model');
  const c: ClipVisionConfig = {
    hiddenSize: f.int('hidden_size'),
    intermediateSize: f.int('intermediate_size'),
    numLayers: f.int('num_hidden_layers'),
    numHeads: f.int('num_attention_heads'),
    numChannels: f.int('num_channels', 3),
    imageSize: f.int('image_size'),
    patchSize: f.int('patch_size'),
    projectionDim: f.int('projection_dim'),
    hiddenAct: f.oneOf('hidden_act', ['gelu', 'quick_gelu']),
    layerNormEps: f.num('layer_norm_eps'),
  };
  if (c.hiddenSize % c.numHeads !== 0) throw new UserError(`${f.label}: hidden_size ${c.hiddenSize} is not divisible by num_attention_heads ${c.numHeads}`);
  if (c.imageSize % c.patchSize !== 0) throw new UserError(`${f.label}: image_size ${c.imageSize} is not divisible by patch_size ${c.patchSize}`);
  return c;
}

/** transformers `CLIPTextConfig` (the SD-2.x text encoder, used offline for the prompt embeddings). */
export interface ClipTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  maxPositions: number;
  hiddenAct: 'gelu' | 'quick_gelu';
  layerNormEps: number;
  eosTokenId: number;
}

export function parseClipTextConfig(f: JsonFields): ClipTextConfig {
  f.oneOf('model_type', ['clip_text_model'], 'clip_text_model');
  const c: ClipTextConfig = {
    vocabSize: f.int('vocab_size'),
    hiddenSize: f.int('hidden_size'),
    intermediateSize: f.int('intermediate_size'),
    numLayers: f.int('num_hidden_layers'),
    numHeads: f.int('num_attention_heads'),
    maxPositions: f.int('max_position_embeddings'),
    hiddenAct: f.oneOf('hidden_act', ['gelu', 'quick_gelu']),
    layerNormEps: f.num('layer_norm_eps'),
    eosTokenId: f.int('eos_token_id', 2, 0),
  };
  if (c.hiddenSize % c.numHeads !== 0) throw new UserError(`${f.label}: hidden_size ${c.hiddenSize} is not divisible by num_attention_heads ${c.numHeads}`);
  return c;
}

/** `StableUnCLIPImageNormalizer`: learned mean/std of the CLIP image embedding. */
export interface ImageNormalizerConfig {
  embeddingDim: number;
}

export function parseImageNormalizerConfig(f: JsonFields): ImageNormalizerConfig {
  return { embeddingDim: f.int('embedding_dim') };
}

/** The components `model_index.json` must name, with the [library, class] each must have. */
export const PIPELINE_COMPONENTS = {
  feature_extractor: ['transformers', 'CLIPImageProcessor'],
  image_encoder: ['transformers', 'CLIPVisionModelWithProjection'],
  image_normalizer: ['stable_diffusion', 'StableUnCLIPImageNormalizer'],
  image_noising_scheduler: ['diffusers', 'DDPMScheduler'],
  scheduler: ['diffusers', 'DDIMScheduler'],
  tokenizer: ['transformers', 'CLIPTokenizer'],
  text_encoder: ['transformers', 'CLIPTextModel'],
  unet: ['mvdiffusion.models.unet_mv2d_condition', 'UNetMV2DConditionModel'],
  vae: ['diffusers', 'AutoencoderKL'],
} as const;

export type PipelineComponent = keyof typeof PIPELINE_COMPONENTS;

/** Components the sampler cannot run without (tokenizer/text encoder are only needed without clr_embeds.pt). */
const REQUIRED: PipelineComponent[] = ['feature_extractor', 'image_encoder', 'image_normalizer', 'image_noising_scheduler', 'scheduler', 'unet', 'vae'];

export interface ModelIndex {
  className: string;
  /** Components present in the index (a `[null, null]` entry counts as absent, as in diffusers). */
  components: Set<PipelineComponent>;
}

/** `anyUnet`: the UNet comes from elsewhere (a trainer's), so the folder's `unet` entry may name another class. */
export function parseModelIndex(f: JsonFields, opts: { anyUnet?: boolean } = {}): ModelIndex {
  f.oneOf('_class_name', ['StableUnCLIPImg2ImgPipeline']);
  const components = new Set<PipelineComponent>();
  for (const [name, [lib, cls]] of Object.entries(PIPELINE_COMPONENTS) as [PipelineComponent, readonly [string, string]][]) {
    const v = f.raw(name);
    if (v === undefined || (Array.isArray(v) && v[0] === null && v[1] === null)) continue;
    const anyClass = opts.anyUnet && name === 'unet';
    if (!Array.isArray(v) || v.length !== 2 || (v[1] !== cls && !anyClass)) f.fail(name, `["${lib}", "${cls}"]`);
    // The library name of the UNet differs between exports (module path vs package); the class decides.
    components.add(name);
  }
  const missing = REQUIRED.filter((c) => !components.has(c));
  if (missing.length > 0) throw new UserError(`${f.label}: the pipeline lacks ${missing.join(', ')}; a FaceLift pipeckpts/ folder needs all of ${REQUIRED.join(', ')}`);
  return { className: f.str('_class_name'), components };
}

/** Reads `<dir>/model_index.json`, checking that each listed component folder exists. */
export function readModelIndex(dir: string, opts: { anyUnet?: boolean } = {}): ModelIndex {
  const path = join(dir, 'model_index.json');
  if (!existsSync(path)) throw new UserError(`${dir} is not a diffusers pipeline folder (no model_index.json); pass the pipeckpts/ folder`);
  const index = parseModelIndex(JsonFields.fromFile(path, 'model_index.json'), opts);
  for (const c of index.components) {
    if (!existsSync(join(dir, c))) throw new UserError(`${dir}: model_index.json lists "${c}" but the folder ${c}/ is missing`);
  }
  return index;
}

/** Reads `<dir>/<component>/config.json` with a parser above. */
export function readComponentConfig<T>(dir: string, component: string, parse: (f: JsonFields) => T, file = 'config.json'): T {
  return parse(JsonFields.fromFile(join(dir, component, file), `${component}/${file}`));
}
