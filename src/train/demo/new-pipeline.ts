/**
 * A new multi-view diffusion pipeline to train from scratch, in the official `pipeckpts/` layout: the multi-view
 * UNet (FaceLift's block layout, sizes from the recipe) and a small CLIP vision encoder, both with fresh seeded
 * weights; a VAE trained beforehand (`facelift train vae`); the image normaliser (mean 0, std 1), FaceLift's two
 * schedulers and a CLIP image processor for the encoder's input size. There is no text encoder: the six per-view
 * prompt embeddings FaceLift computes from text are fixed random codes here (`clr_embeds.pt`, [6, tokens, width]),
 * which is all the UNet uses them for — telling the view slots apart.
 *
 * The image encoder stays frozen and untrained, as the pipeline's encoders are frozen in training: its embedding is
 * a fixed random projection of the input photo; the UNet learns what it can from it (the condition latent,
 * concatenated to the noisy latent, carries most of the input).
 */
import { cpSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseClipVisionConfig, parseUNetConfig, parseVaeConfig } from '../../diffusion/config.ts';
import { declareClipVisionParams } from '../../diffusion/clip-params.ts';
import { JsonFields } from '../../diffusion/json-fields.ts';
import { paramSpecs, type ParamSpec } from '../../diffusion/params.ts';
import { declareUNetParams } from '../../diffusion/unet-params.ts';
import { saveTorch, torchTensor } from '../../io/torch-save.ts';
import { writeSafetensors } from '../../io/safetensors.ts';
import { createRng } from '../../synth/rng.ts';
import { UserError } from '../../util/errors.ts';
import { checkTree, readYamlTree, type Schema } from '../config-tree.ts';
import { initialParams } from '../init.ts';
import { toHalfArray } from '../../core/index.ts';

const SCHEMA: Schema = { seed: 'int', image_size: 'int', prompt_tokens: 'int', unet: 'any', image_encoder: 'any' };

const DIFFUSERS = '0.30.3';

/** FaceLift's UNet config.json (pipeckpts/unet) with the sizes left to the recipe. */
function unetJson(fields: Record<string, unknown>, sampleSize: number): Record<string, unknown> {
  return {
    _class_name: 'UNetMV2DConditionModel', _diffusers_version: DIFFUSERS, act_fn: 'silu',
    addition_channels: [1280, 1280, 1280], addition_downsample: false, addition_embed_type: null,
    addition_embed_type_num_heads: 64, addition_time_embed_dim: null, cd_attention_last: false, cd_attention_mid: false,
    center_input_sample: false, class_embed_type: 'projection', class_embeddings_concat: false, conv_in_kernel: 3,
    conv_out_kernel: 3, cross_attention_norm: null,
    down_block_types: ['CrossAttnDownBlockMV2D', 'CrossAttnDownBlockMV2D', 'CrossAttnDownBlockMV2D', 'DownBlock2D'],
    downsample_padding: 1, dual_cross_attention: false, encoder_hid_dim: null, encoder_hid_dim_type: null,
    flip_sin_to_cos: true, freq_shift: 0, in_channels: 8, mid_block_only_cross_attention: null,
    mid_block_scale_factor: 1,
    mid_block_type: 'UNetMidBlockMV2DCrossAttn', multiview_attention: true, norm_eps: 1e-5, num_attention_heads: null,
    num_class_embeds: null, num_views: 6, only_cross_attention: false, out_channels: 4, resnet_out_scale_factor: 1.0,
    resnet_skip_time_act: false, resnet_time_scale_shift: 'default', selfattn_block: 'custom',
    sparse_mv_attention: true,
    time_cond_proj_dim: null, time_embedding_act_fn: null, time_embedding_dim: null, time_embedding_type: 'positional',
    timestep_post_act: null, transformer_layers_per_block: 1,
    up_block_types: ['UpBlock2D', 'CrossAttnUpBlockMV2D', 'CrossAttnUpBlockMV2D', 'CrossAttnUpBlockMV2D'],
    upcast_attention: true, use_linear_projection: true,
    ...fields,
    sample_size: sampleSize,
  };
}

function clipJson(fields: Record<string, unknown>): Record<string, unknown> {
  return {
    architectures: ['CLIPVisionModelWithProjection'], attention_dropout: 0.0, dropout: 0.0, hidden_act: 'gelu',
    initializer_factor: 1.0, initializer_range: 0.02, layer_norm_eps: 1e-5, model_type: 'clip_vision_model',
    num_channels: 3, torch_dtype: 'float32', transformers_version: '4.44.0', ...fields,
  };
}

/** The schedulers of FaceLift's pipeckpts (DDIM, v-prediction; the unCLIP image-noising DDPM). */
const SCHEDULER = {
  _class_name: 'DDIMScheduler', _diffusers_version: DIFFUSERS, beta_end: 0.012, beta_schedule: 'scaled_linear',
  beta_start: 0.00085, clip_sample: false, clip_sample_range: 1.0, dynamic_thresholding_ratio: 0.995,
  num_train_timesteps: 1000, prediction_type: 'v_prediction', rescale_betas_zero_snr: false, sample_max_value: 1.0,
  set_alpha_to_one: false, steps_offset: 1, thresholding: false, timestep_spacing: 'leading', trained_betas: null,
};
const NOISING = {
  _class_name: 'DDPMScheduler', _diffusers_version: DIFFUSERS, beta_end: 0.02, beta_schedule: 'squaredcos_cap_v2',
  beta_start: 0.0001, clip_sample: true, clip_sample_range: 1.0, dynamic_thresholding_ratio: 0.995,
  num_train_timesteps: 1000, prediction_type: 'epsilon', rescale_betas_zero_snr: false, sample_max_value: 1.0,
  steps_offset: 0, thresholding: false, timestep_spacing: 'leading', trained_betas: null, variance_type: 'fixed_small',
};

function processorJson(size: number): Record<string, unknown> {
  return {
    crop_size: { height: size, width: size }, do_center_crop: true, do_convert_rgb: true, do_normalize: true,
    do_rescale: true, do_resize: true, image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_processor_type: 'CLIPImageProcessor', image_std: [0.26862954, 0.26130258, 0.27577711], resample: 3,
    rescale_factor: 1 / 255, size: { shortest_edge: size },
  };
}

const json = (path: string, v: unknown) => writeFileSync(path, `${JSON.stringify(v, null, 2)}\n`);

async function writeWeights(dir: string, file: string, specs: readonly ParamSpec[], values: Map<string, Float32Array>) {
  const tensors = specs.map((s) => {
    const data = values.get(s.name);
    if (!data) throw new Error(`no initial value for ${s.name}`);
    return [s.name, { dtype: 'F32' as const, shape: s.shape, data }] as const;
  });
  await writeSafetensors(join(dir, file), new Map(tensors));
}

export interface NewPipelineResult {
  dir: string;
  unetParams: number;
  encoderParams: number;
}

/** Writes `out` (replaced atomically) from a recipe YAML and a trained `vae/` folder. */
export async function writeNewPipeline(recipePath: string, vaeDir: string, out: string): Promise<NewPipelineResult> {
  const tree = readYamlTree(recipePath);
  const unknown = checkTree(tree, SCHEMA, recipePath);
  if (unknown.length) throw new UserError(`${recipePath}: unknown keys ${unknown.join(', ')}`);
  const seed = (tree.seed as number | undefined) ?? 0;
  const size = tree.image_size as number | undefined;
  if (!size || size % 8 !== 0) throw new UserError(`${recipePath}: image_size must be a multiple of 8`);
  const tokens = (tree.prompt_tokens as number | undefined) ?? 77;
  if (!existsSync(join(vaeDir, 'config.json'))) {
    throw new UserError(`${vaeDir} is not a VAE folder (no config.json); train one with \`facelift train vae\``);
  }
  const vae = parseVaeConfig(JsonFields.fromFile(join(vaeDir, 'config.json'), 'vae/config.json'));
  if (vae.blockOutChannels.length !== 4) {
    throw new UserError(`${vaeDir}: the pipeline needs a VAE that downsamples by 8 (4 levels)`);
  }

  const clipFields = clipJson((tree.image_encoder ?? {}) as Record<string, unknown>);
  const clip = parseClipVisionConfig(new JsonFields(`${recipePath} image_encoder`, clipFields as never));
  const unetFields = unetJson(
    {
      projection_class_embeddings_input_dim: 2 * clip.projectionDim,
      in_channels: 2 * vae.latentChannels,
      out_channels: vae.latentChannels,
      ...((tree.unet ?? {}) as Record<string, unknown>),
    },
    size / 8,
  );
  const unet = parseUNetConfig(new JsonFields(`${recipePath} unet`, unetFields as never));
  if (unet.classEmbedInputDim !== 2 * clip.projectionDim) {
    throw new UserError(
      `${recipePath}: the UNet's class input must be twice the encoder's projection_dim (${2 * clip.projectionDim})`,
    );
  }

  const tmp = `${out}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const sub = (name: string) => {
    const d = join(tmp, name);
    mkdirSync(d, { recursive: true });
    return d;
  };
  json(join(tmp, 'model_index.json'), {
    _class_name: 'StableUnCLIPImg2ImgPipeline', _diffusers_version: DIFFUSERS,
    feature_extractor: ['transformers', 'CLIPImageProcessor'],
    image_encoder: ['transformers', 'CLIPVisionModelWithProjection'],
    image_noising_scheduler: ['diffusers', 'DDPMScheduler'],
    image_normalizer: ['stable_diffusion', 'StableUnCLIPImageNormalizer'],
    scheduler: ['diffusers', 'DDIMScheduler'],
    text_encoder: [null, null],
    tokenizer: [null, null],
    unet: ['mvdiffusion.models.unet_mv2d_condition', 'UNetMV2DConditionModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  });
  json(join(sub('feature_extractor'), 'preprocessor_config.json'), processorJson(clip.imageSize));
  json(join(sub('scheduler'), 'scheduler_config.json'), SCHEDULER);
  json(join(sub('image_noising_scheduler'), 'scheduler_config.json'), NOISING);
  const norm = sub('image_normalizer');
  json(join(norm, 'config.json'), {
    _class_name: 'StableUnCLIPImageNormalizer', _diffusers_version: DIFFUSERS, embedding_dim: clip.projectionDim,
  });
  await writeSafetensors(join(norm, 'diffusion_pytorch_model.safetensors'), {
    mean: { dtype: 'F32', shape: [1, clip.projectionDim], data: new Float32Array(clip.projectionDim) },
    std: { dtype: 'F32', shape: [1, clip.projectionDim], data: new Float32Array(clip.projectionDim).fill(1) },
  });
  const enc = sub('image_encoder');
  json(join(enc, 'config.json'), clipFields);
  const clipSpecs = paramSpecs((d) => declareClipVisionParams(d, clip));
  await writeWeights(enc, 'model.safetensors', clipSpecs, initialParams(clipSpecs, seed + 1));
  const u = sub('unet');
  json(join(u, 'config.json'), unetFields);
  const unetSpecs = paramSpecs((d) => declareUNetParams(d, unet));
  await writeWeights(u, 'diffusion_pytorch_model.safetensors', unetSpecs, initialParams(unetSpecs, seed + 2));
  cpSync(vaeDir, join(tmp, 'vae'), { recursive: true });

  // Per-view codes: N(0, 1), one set of `tokens` vectors per view, in fp16 as FaceLift's clr_embeds.pt.
  const r = createRng(seed + 3);
  const codes = new Float32Array(unet.numViews * tokens * unet.crossAttentionDim);
  for (let i = 0; i < codes.length; i++) {
    codes[i] = Math.sqrt(-2 * Math.log(1 - r.next())) * Math.cos(2 * Math.PI * r.next());
  }
  const shape = [unet.numViews, tokens, unet.crossAttentionDim];
  await saveTorch(join(tmp, 'clr_embeds.pt'), torchTensor(toHalfArray(codes), shape, 'F16'), 'clr_embeds');

  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  const count = (specs: readonly ParamSpec[]) => specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  return { dir: out, unetParams: count(unetSpecs), encoderParams: count(clipSpecs) };
}
