/**
 * The VAE training config (facelift-ts's own layout; the reference never trained its VAE, it took SD-2.1's):
 * `vae:` holds the diffusers `AutoencoderKL` config.json fields of the network, `data:` the FaceLift sample lists
 * (the MV-diffusion layout: 6 RGBA views per sample), `training:` the optimizer, schedule and cadence.
 */
import { isAbsolute, join } from 'node:path';
import { parseVaeConfig, type VaeConfig } from '../../diffusion/config.ts';
import { JsonFields } from '../../diffusion/json-fields.ts';
import { UserError } from '../../util/errors.ts';
import { checkTree, type Schema, type Tree } from '../config-tree.ts';
import type { BackgroundSpec } from '../gslrm/config.ts';

const SCHEMA: Schema = {
  seed: 'int',
  output_dir: 'string',
  init_from: 'string?',
  vae: 'any',
  data: {
    train: 'string', val: 'string?', image_size: 'int', crop: 'int?', views_per_sample: 'int', background: 'any',
  },
  training: {
    batch_size: 'int',
    grad_accum: 'int',
    lr: 'number',
    betas: 'any',
    eps: 'number',
    weight_decay: 'number',
    warmup: 'int',
    max_passes: 'int',
    kl_weight: 'number',
    mse_weight: 'number',
    grad_clip: 'number',
    checkpoint_every: 'int',
    print_every: 'int',
    validate_every: 'int?',
  },
};

export interface VaeTrainConfig {
  tree: Tree;
  seed: number;
  dir: string;
  initFrom: string | null;
  /** The network's config.json content (as exported). */
  json: Record<string, unknown>;
  vae: VaeConfig;
  train: string;
  val: string | null;
  imageSize: number;
  /** Side of the random square crop each view is trained on (the network is convolutional); null: whole views. */
  crop: number | null;
  views: number;
  background: BackgroundSpec;
  batchSize: number;
  gradAccum: number;
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  warmup: number;
  maxPasses: number;
  klWeight: number;
  mseWeight: number;
  gradClip: number;
  checkpointEvery: number;
  printEvery: number;
  validateEvery: number | null;
}

/** The config.json of an AutoencoderKL with the given fields (the rest as SD-2.1's VAE). */
export function vaeConfigJson(fields: Record<string, unknown>): Record<string, unknown> {
  const n = Array.isArray(fields.block_out_channels) ? fields.block_out_channels.length : 4;
  return {
    _class_name: 'AutoencoderKL',
    _diffusers_version: '0.30.3',
    act_fn: 'silu',
    down_block_types: Array(n).fill('DownEncoderBlock2D'),
    up_block_types: Array(n).fill('UpDecoderBlock2D'),
    force_upcast: true,
    in_channels: 3,
    out_channels: 3,
    latent_channels: 4,
    latents_mean: null,
    latents_std: null,
    mid_block_add_attention: true,
    scaling_factor: 0.18215,
    shift_factor: null,
    use_post_quant_conv: true,
    use_quant_conv: true,
    ...fields,
  };
}

export function parseVaeTrainConfig(tree: Tree, source: string): { config: VaeTrainConfig; unknownKeys: string[] } {
  const unknownKeys = checkTree(tree, SCHEMA, source);
  const need = <T>(v: T | undefined, key: string): T => {
    if (v === undefined || v === null) throw new UserError(`${source}: ${key} is required`);
    return v;
  };
  const data = need(tree.data as Tree | undefined, 'data');
  const t = need(tree.training as Tree | undefined, 'training');
  const vaeFields = need(tree.vae as Record<string, unknown> | undefined, 'vae');
  if (typeof vaeFields !== 'object' || Array.isArray(vaeFields)) {
    throw new UserError(`${source}: vae must be a mapping of AutoencoderKL config fields`);
  }
  const json = vaeConfigJson(vaeFields);
  const vae = parseVaeConfig(new JsonFields(`${source} vae`, json as never));
  const imageSize = need(data.image_size as number | undefined, 'data.image_size');
  const factor = 2 ** (vae.blockOutChannels.length - 1);
  if (imageSize % factor !== 0) {
    throw new UserError(
      `${source}: data.image_size ${imageSize} is not a multiple of the VAE's downsampling factor ${factor}`,
    );
  }
  const bg = data.background ?? 'white';
  const names = ['white', 'black', 'gray', 'random', 'three_choices'];
  if (!(typeof bg === 'number' || names.includes(bg as string))) {
    throw new UserError(
      `${source}: data.background must be one of ${names.join(', ')} or a grey level, got ${JSON.stringify(bg)}`,
    );
  }
  const background = bg as BackgroundSpec;
  const betas = (t.betas ?? [0.9, 0.999]) as number[];
  if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number')) {
    throw new UserError(`${source}: training.betas must be two numbers, got ${JSON.stringify(t.betas)}`);
  }
  const positive = (key: string, v: unknown, dflt: number): number => {
    const x = v ?? dflt;
    if (typeof x !== 'number' || !(x > 0)) {
      throw new UserError(`${source}: training.${key} must be a positive number, got ${JSON.stringify(v)}`);
    }
    return x;
  };
  const out = String(need(tree.output_dir as string | undefined, 'output_dir'));
  return {
    unknownKeys,
    config: {
      tree,
      seed: (tree.seed as number | undefined) ?? 0,
      dir: isAbsolute(out) ? out : join(process.cwd(), out),
      initFrom: (tree.init_from as string | null | undefined) ?? null,
      json,
      vae,
      train: String(need(data.train as string | undefined, 'data.train')),
      val: (data.val as string | null | undefined) ?? null,
      imageSize,
      crop: checkCrop((data.crop as number | null | undefined) ?? null, imageSize, factor, source),
      views: (data.views_per_sample as number | undefined) ?? 6,
      background,
      batchSize: positive('batch_size', t.batch_size, 1),
      gradAccum: positive('grad_accum', t.grad_accum, 1),
      lr: positive('lr', t.lr, 1e-4),
      betas: [betas[0]!, betas[1]!],
      eps: positive('eps', t.eps, 1e-8),
      weightDecay: (t.weight_decay as number | undefined) ?? 0,
      warmup: (t.warmup as number | undefined) ?? 0,
      maxPasses: positive('max_passes', t.max_passes, 1000),
      klWeight: (t.kl_weight as number | undefined) ?? 1e-6,
      mseWeight: (t.mse_weight as number | undefined) ?? 0,
      gradClip: positive('grad_clip', t.grad_clip, 1),
      checkpointEvery: positive('checkpoint_every', t.checkpoint_every, 500),
      printEvery: positive('print_every', t.print_every, 10),
      validateEvery: t.validate_every === undefined ? 500 : (t.validate_every as number | null),
    },
  };
}

function checkCrop(crop: number | null, size: number, factor: number, source: string): number | null {
  if (crop === null || crop === size) return null;
  if (!(crop > 0 && crop < size && crop % factor === 0)) {
    throw new UserError(`${source}: data.crop ${crop} must be a multiple of ${factor} below data.image_size ${size}`);
  }
  return crop;
}
