/**
 * The official FaceLift multi-view diffusion components (the released `pipeckpts/`), as configs in the official
 * key layout, run through the same parsers as files on disk. Values: SD-2.1-unclip's configs with FaceLift's UNet
 * overrides (spec mvdiffusion.md §1–2, golden/official-keys). The text encoder's config is the SD-2.1 OpenCLIP
 * ViT-H text tower (external; no golden key list for it).
 */
import { parseClipTextConfig, parseClipVisionConfig, parseUNetConfig, parseVaeConfig } from './config.ts';
import type { ClipTextConfig, ClipVisionConfig, UNetConfig, VaeConfig } from './config.ts';
import { declareClipTextParams, declareClipVisionParams } from './clip-params.ts';
import { JsonFields } from './json-fields.ts';
import { paramSpecs, type ParamSpec } from './params.ts';
import { declareUNetParams } from './unet-params.ts';
import { declareVaeParams } from './vae-params.ts';

const official = (label: string, obj: Record<string, unknown>) => new JsonFields(`official ${label}`, obj as never);

export const OFFICIAL_UNET_CONFIG: UNetConfig = parseUNetConfig(official('unet/config.json', {
  sample_size: 64, in_channels: 8, out_channels: 4, flip_sin_to_cos: true, freq_shift: 0,
  down_block_types: ['CrossAttnDownBlockMV2D', 'CrossAttnDownBlockMV2D', 'CrossAttnDownBlockMV2D', 'DownBlock2D'],
  mid_block_type: 'UNetMidBlockMV2DCrossAttn',
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlockMV2D', 'CrossAttnUpBlockMV2D', 'CrossAttnUpBlockMV2D'],
  block_out_channels: [320, 640, 1280, 1280], layers_per_block: 2, act_fn: 'silu', norm_num_groups: 32, norm_eps: 1e-5,
  cross_attention_dim: 1024, attention_head_dim: [5, 10, 20, 20], use_linear_projection: true, upcast_attention: true,
  class_embed_type: 'projection', projection_class_embeddings_input_dim: 2048,
  num_views: 6, multiview_attention: true, sparse_mv_attention: true, selfattn_block: 'custom',
  cd_attention_last: false, cd_attention_mid: false, addition_downsample: false,
}));

export const OFFICIAL_VAE_CONFIG: VaeConfig = parseVaeConfig(official('vae/config.json', {
  in_channels: 3, out_channels: 3, latent_channels: 4,
  down_block_types: Array(4).fill('DownEncoderBlock2D'), up_block_types: Array(4).fill('UpDecoderBlock2D'),
  block_out_channels: [128, 256, 512, 512], layers_per_block: 2, act_fn: 'silu', norm_num_groups: 32,
  sample_size: 768, scaling_factor: 0.18215,
}));

export const OFFICIAL_CLIP_VISION_CONFIG: ClipVisionConfig = parseClipVisionConfig(official('image_encoder/config.json', {
  model_type: 'clip_vision_model', hidden_size: 1280, intermediate_size: 5120, num_hidden_layers: 32,
  num_attention_heads: 16, num_channels: 3, image_size: 224, patch_size: 14, projection_dim: 1024,
  hidden_act: 'gelu', layer_norm_eps: 1e-5,
}));

/** SD-2.x keeps 23 of OpenCLIP-H's 24 text layers, so `last_hidden_state` is OpenCLIP's penultimate layer + final LN. */
export const OFFICIAL_CLIP_TEXT_CONFIG: ClipTextConfig = parseClipTextConfig(official('text_encoder/config.json', {
  model_type: 'clip_text_model', vocab_size: 49408, hidden_size: 1024, intermediate_size: 4096,
  num_hidden_layers: 23, num_attention_heads: 16, max_position_embeddings: 77, hidden_act: 'gelu',
  layer_norm_eps: 1e-5, eos_token_id: 2,
}));

export interface ComponentSpec {
  name: string;
  description: string;
  specs: ParamSpec[];
}

/** The diffusion components as facelift-ts builds them, with their declared parameters. */
export function officialDiffusionComponents(): ComponentSpec[] {
  return [
    { name: 'unet', description: 'multi-view UNet (UNetMV2DConditionModel)', specs: paramSpecs((d) => declareUNetParams(d, OFFICIAL_UNET_CONFIG)) },
    { name: 'vae', description: 'AutoencoderKL (SD-2.1)', specs: paramSpecs((d) => declareVaeParams(d, OFFICIAL_VAE_CONFIG)) },
    { name: 'image_encoder', description: 'CLIP ViT-H/14 vision tower + projection', specs: paramSpecs((d) => declareClipVisionParams(d, OFFICIAL_CLIP_VISION_CONFIG)) },
    { name: 'text_encoder', description: 'CLIP text encoder (OpenCLIP ViT-H, 23 layers; only for prompt embeddings)', specs: paramSpecs((d) => declareClipTextParams(d, OFFICIAL_CLIP_TEXT_CONFIG)) },
  ];
}
