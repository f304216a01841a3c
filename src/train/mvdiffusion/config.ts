/**
 * The MV-diffusion training config in the flat layout of FaceLift's `configs/mvdiffusion.yaml` and the fork's
 * `mouse_mvdiffusion*.yaml` (spec mvdiffusion.md §7, mouse.md §6), read as OmegaConf does: `${key}` values are
 * interpolated after `--set` overrides. Official files load unchanged; keys that only steer the reference's
 * CUDA setup (xformers, TF32, wandb, dataloader workers) are accepted and have no effect here.
 */
import { isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../../util/errors.ts';
import { rangeOf, type ViewAugmentation } from '../augment.ts';
import { at, checkTree, type Schema, type Tree } from '../config-tree.ts';
import type { BackgroundSpec } from '../gslrm/config.ts';
import type { SnrWeighting } from './numerics.ts';

const DATASET: Schema = {
  path: 'string?',
  bg_color: 'any',
  augmentation: 'bool',
  aug_brightness: 'any',
  aug_contrast: 'any',
  aug_hflip: 'bool',
};

const SCHEMA: Schema = {
  n_views: 'int',
  img_wh: 'int',
  reference_view_idx: 'any',
  dataset_type: 'string?',
  pretrained_model_name_or_path: 'string',
  pretrained_unet_path: 'string?',
  revision: 'any',
  prompt_embed_path: 'string?',
  train_dataset: DATASET,
  validation_dataset: DATASET,
  checkpoint_prefix: 'string?',
  output_dir: 'string',
  val_out_dir: 'string',
  seed: 'int',
  train_batch_size: 'int',
  validation_batch_size: 'int',
  max_train_steps: 'int',
  gradient_accumulation_steps: 'int',
  gradient_checkpointing: 'bool',
  learning_rate: 'number',
  step_rules: 'string',
  scale_lr: 'bool',
  lr_scheduler: 'string',
  lr_warmup_steps: 'int',
  snr_gamma: 'number?',
  use_8bit_adam: 'bool',
  allow_tf32: 'bool',
  use_ema: 'bool',
  dataloader_num_workers: 'int',
  adam_beta1: 'number',
  adam_beta2: 'number',
  adam_weight_decay: 'number',
  adam_epsilon: 'number',
  max_grad_norm: 'number?',
  prediction_type: 'string?',
  vis_dir: 'string',
  logging_dir: 'string',
  mixed_precision: 'string?',
  report_to: 'string?',
  local_rank: 'int',
  checkpointing_steps: 'int',
  checkpoints_total_limit: 'int?',
  resume_from_checkpoint: 'string?',
  enable_xformers_memory_efficient_attention: 'bool',
  validation_steps: 'int',
  validation_sanity_check: 'bool',
  tracker_project_name: 'string',
  trainable_modules: 'any',
  use_classifier_free_guidance: 'bool',
  condition_drop_rate: 'number',
  drop_type: 'string',
  camera_embedding_lr_mult: 'number',
  scale_input_latents: 'bool',
  pipe_kwargs: { num_views: 'any' },
  validation_guidance_scales: 'any',
  validation_grid_nrow: 'any',
  pipe_validation_kwargs: { eta: 'number' },
  unet_from_pretrained_kwargs: {
    unclip: 'bool',
    num_views: 'any',
    sample_size: 'int',
    zero_init_conv_in: 'bool',
    init_mvattn_with_selfattn: 'bool',
    cd_attention_last: 'bool',
    cd_attention_mid: 'bool',
    multiview_attention: 'bool',
    sparse_mv_attention: 'bool',
    selfattn_block: 'string',
    addition_downsample: 'bool',
  },
  wandb_exp_name: 'string',
  wandb_group: 'string',
  wandb_job_type: 'string',
  wandb_run_id: 'any',
  // facelift-ts additions (absent from the official files; defaults = the reference's behaviour):
  snr_weighting: 'string',
  validation_num_inference_steps: 'int',
  cache_encoder_outputs: 'bool',
};

export interface DatasetConfig {
  path: string;
  background: BackgroundSpec;
  /** The fork's consistent brightness/contrast augmentation (mouse data). */
  augmentation: ViewAugmentation | null;
}

export interface MvTrainConfig {
  views: number;
  imageSize: number;
  /** 'facelift' = FixViewDataset; 'mouse' = the fork's MouseMVDiffusionDataset. */
  datasetType: 'facelift' | 'mouse';
  /** The input view: a fixed index, or drawn per item among these. */
  referenceViews: number[];
  pretrained: string;
  promptEmbedPath: string | null;
  train: DatasetConfig;
  validation: DatasetConfig | null;
  /** `checkpoint_prefix` / `output_dir`: checkpoints and the exported `pipeckpts/`. */
  modelDir: string;
  valOutDir: string;
  seed: number;
  batchSize: number;
  validationBatchSize: number;
  maxTrainSteps: number;
  gradAccum: number;
  gradientCheckpointing: boolean;
  lr: number;
  stepRules: string;
  betas: [number, number];
  weightDecay: number;
  eps: number;
  maxGradNorm: number | null;
  snrGamma: number | null;
  snrWeighting: SnrWeighting;
  use8bitAdam: boolean;
  useEma: boolean;
  checkpointingSteps: number;
  checkpointsTotalLimit: number | null;
  resumeFromCheckpoint: string | null;
  validationSteps: number;
  validationSanityCheck: boolean;
  validationGuidanceScales: number[];
  validationInferenceSteps: number;
  validationEta: number;
  conditionDropRate: number;
  dropType: 'drop_as_a_whole' | 'drop_independent';
  useCfg: boolean;
  scaleInputLatents: boolean;
  zeroInitConvIn: boolean;
  unetOverrides: { sampleSize: number; multiview: boolean; sparse: boolean; numViews: number };
  cacheEncoderOutputs: boolean;
  tree: Tree;
}

/** OmegaConf-style `${a.b}` interpolation, after overrides: whole-string references keep the value's type. */
export function resolveInterpolations(tree: Tree, source: string): Tree {
  const lookup = (path: string, seen: string[]): unknown => {
    if (seen.includes(path))
      throw new UserError(`${source}: \${${path}} refers to itself (${[...seen, path].join(' → ')})`);
    const v = at(tree, path);
    if (v === undefined) throw new UserError(`${source}: \${${path}} names a key the config does not have`);
    return resolveValue(v, [...seen, path]);
  };
  const resolveValue = (v: unknown, seen: string[]): unknown => {
    if (typeof v === 'string') {
      const whole = /^\$\{([^}]+)\}$/.exec(v);
      if (whole) return lookup(whole[1]!.trim(), seen);
      return v.replace(/\$\{([^}]+)\}/g, (_, p: string) => String(lookup(p.trim(), seen)));
    }
    if (Array.isArray(v)) return v.map((x) => resolveValue(x, seen));
    if (v !== null && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveValue(x, seen)]));
    return v;
  };
  return resolveValue(tree, []) as Tree;
}

/** Python's os.path.join for two parts (an absolute second part wins), then resolved against `base`. */
function pyJoin(base: string, a: string, b: string): string {
  const p = isAbsolute(b) || a === '' ? b : join(a, b);
  return isAbsolute(p) ? p : resolve(base, p);
}

export interface ParsedMvConfig {
  config: MvTrainConfig;
  unknownKeys: string[];
}

export function parseMvTrainConfig(raw: Tree, source: string, baseDir = process.cwd()): ParsedMvConfig {
  const tree = resolveInterpolations(raw, source);
  const unknownKeys = checkTree(tree, SCHEMA, source);
  const get = (p: string): unknown => at(tree, p);
  const num = (p: string, dflt: number): number => (typeof get(p) === 'number' ? (get(p) as number) : dflt);
  const bool = (p: string, dflt: boolean): boolean => (typeof get(p) === 'boolean' ? (get(p) as boolean) : dflt);
  const str = (p: string): string | null => (typeof get(p) === 'string' ? (get(p) as string) : null);
  const need = (p: string): string => {
    const v = str(p);
    if (!v) throw new UserError(`${source}: ${p} is missing (see configs/mvdiffusion.yaml)`);
    return v;
  };
  const positive = (p: string, dflt: number): number => {
    const v = num(p, dflt);
    if (!(v > 0)) throw new UserError(`${source}: ${p} must be positive, got ${v}`);
    return v;
  };
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));

  const views = positive('n_views', 6);
  const imageSize = positive('img_wh', 512);
  if (imageSize % 8 !== 0)
    throw new UserError(`${source}: img_wh must be a multiple of 8 (the VAE's factor), got ${imageSize}`);
  const datasetType = str('dataset_type') ?? 'facelift';
  if (datasetType !== 'facelift' && datasetType !== 'mouse')
    throw new UserError(`${source}: dataset_type must be mouse or absent, got ${JSON.stringify(datasetType)}`);
  const ref = get('reference_view_idx') ?? 0;
  let referenceViews: number[];
  if (ref === 'random') referenceViews = [...Array(views).keys()];
  else if (typeof ref === 'number') referenceViews = [ref];
  else if (Array.isArray(ref) && ref.every((x) => typeof x === 'number')) referenceViews = ref as number[];
  else
    throw new UserError(
      `${source}: reference_view_idx must be a view number, "random" or a list, got ${JSON.stringify(ref)}`,
    );
  if (referenceViews.some((v) => !Number.isInteger(v) || v < 0 || v >= views))
    throw new UserError(`${source}: reference_view_idx ${JSON.stringify(ref)} is outside views 0..${views - 1}`);
  if (datasetType === 'facelift' && referenceViews.join() !== '0')
    throw new UserError(
      `${source}: reference_view_idx other than 0 needs dataset_type: mouse (FixViewDataset conditions on view 0)`,
    );

  const dataset = (key: string, required: boolean): DatasetConfig | null => {
    const p = str(`${key}.path`);
    if (!p) {
      if (required) throw new UserError(`${source}: ${key}.path is missing (a text file listing sample folders)`);
      return null;
    }
    const bg = get(`${key}.bg_color`) ?? 'white';
    if (!(typeof bg === 'number' || ['white', 'black', 'gray', 'random', 'three_choices'].includes(bg as string)))
      throw new UserError(
        `${source}: ${key}.bg_color must be white, black, gray, random, three_choices or a number, got ${JSON.stringify(bg)}`,
      );
    const range = (k: string): [number, number] => {
      try {
        return rangeOf(get(`${key}.${k}`), `${key}.${k}`);
      } catch (e) {
        throw new UserError(`${source}: ${(e as Error).message}`);
      }
    };
    const aug = bool(`${key}.augmentation`, false);
    if (aug && datasetType !== 'mouse')
      throw new UserError(`${source}: ${key}.augmentation needs dataset_type: mouse (FixViewDataset has none)`);
    return {
      path: path(p),
      background: bg as BackgroundSpec,
      augmentation: aug ? { brightness: range('aug_brightness'), contrast: range('aug_contrast') } : null,
    };
  };

  const scheduler = str('lr_scheduler') ?? 'piecewise_constant';
  if (scheduler !== 'piecewise_constant')
    throw new UserError(
      `${source}: lr_scheduler ${scheduler} is not supported (the FaceLift configs use piecewise_constant)`,
    );
  if (bool('scale_lr', false))
    throw new UserError(`${source}: scale_lr: true multiplies the rate by the GPU count; set learning_rate directly`);
  const prediction = str('prediction_type');
  if (prediction !== null && prediction !== 'v_prediction' && prediction !== 'epsilon')
    throw new UserError(`${source}: prediction_type must be v_prediction, epsilon or null, got ${prediction}`);
  const dropType = str('drop_type') ?? 'drop_as_a_whole';
  if (dropType !== 'drop_as_a_whole' && dropType !== 'drop_independent')
    throw new UserError(`${source}: drop_type must be drop_as_a_whole or drop_independent, got ${dropType}`);
  const snrWeighting = str('snr_weighting') ?? 'reference';
  if (snrWeighting !== 'reference' && snrWeighting !== 'v-corrected')
    throw new UserError(`${source}: snr_weighting must be reference or v-corrected, got ${snrWeighting}`);
  const scales = get('validation_guidance_scales') ?? [1, 3];
  if (!Array.isArray(scales) || !scales.every((s) => typeof s === 'number' && s > 0))
    throw new UserError(
      `${source}: validation_guidance_scales must be a list of positive numbers, got ${JSON.stringify(scales)}`,
    );
  if (get('trainable_modules') !== null && get('trainable_modules') !== undefined)
    throw new UserError(
      `${source}: trainable_modules must be null (the whole UNet trains, as in every FaceLift config)`,
    );
  const uk = 'unet_from_pretrained_kwargs';
  const unetViews = get(`${uk}.num_views`) ?? views;
  if (unetViews !== views)
    throw new UserError(`${source}: ${uk}.num_views (${String(unetViews)}) differs from n_views (${views})`);
  const sampleSize = num(`${uk}.sample_size`, imageSize / 8);
  if (sampleSize * 8 !== imageSize)
    throw new UserError(
      `${source}: ${uk}.sample_size ${sampleSize} does not match img_wh ${imageSize} (sample_size = img_wh / 8)`,
    );
  for (const k of ['cd_attention_last', 'cd_attention_mid', 'addition_downsample', 'init_mvattn_with_selfattn']) {
    if (bool(`${uk}.${k}`, false))
      throw new UserError(`${source}: ${uk}.${k}: true is an Era3D feature FaceLift leaves off (spec §9)`);
  }
  const gamma = get('snr_gamma');
  const limit = get('checkpoints_total_limit');

  const config: MvTrainConfig = {
    views,
    imageSize,
    datasetType,
    referenceViews,
    pretrained: path(need('pretrained_model_name_or_path')),
    promptEmbedPath: str('prompt_embed_path') ? path(str('prompt_embed_path')!) : null,
    train: dataset('train_dataset', true)!,
    validation: dataset('validation_dataset', false),
    modelDir: pyJoin(baseDir, str('checkpoint_prefix') ?? '', need('output_dir')),
    valOutDir: path(str('val_out_dir') ?? join(need('output_dir'), 'val')),
    seed: num('seed', 42),
    batchSize: positive('train_batch_size', 1),
    validationBatchSize: positive('validation_batch_size', 1),
    maxTrainSteps: positive('max_train_steps', 1),
    gradAccum: positive('gradient_accumulation_steps', 1),
    gradientCheckpointing: bool('gradient_checkpointing', false),
    lr: positive('learning_rate', 1e-4),
    stepRules: str('step_rules') ?? '1:1000000000,1',
    betas: [num('adam_beta1', 0.9), num('adam_beta2', 0.999)],
    weightDecay: num('adam_weight_decay', 1e-2),
    eps: num('adam_epsilon', 1e-8),
    maxGradNorm: typeof get('max_grad_norm') === 'number' ? (get('max_grad_norm') as number) : null,
    snrGamma: typeof gamma === 'number' ? gamma : null,
    snrWeighting,
    use8bitAdam: bool('use_8bit_adam', false),
    useEma: bool('use_ema', false),
    checkpointingSteps: positive('checkpointing_steps', 500),
    checkpointsTotalLimit: typeof limit === 'number' ? limit : null,
    resumeFromCheckpoint: str('resume_from_checkpoint'),
    validationSteps: positive('validation_steps', 1000),
    validationSanityCheck: bool('validation_sanity_check', false),
    validationGuidanceScales: scales as number[],
    validationInferenceSteps: positive('validation_num_inference_steps', 20),
    validationEta: num('pipe_validation_kwargs.eta', 1),
    conditionDropRate: num('condition_drop_rate', 0),
    dropType,
    useCfg: bool('use_classifier_free_guidance', false),
    scaleInputLatents: bool('scale_input_latents', true),
    zeroInitConvIn: bool(`${uk}.zero_init_conv_in`, false),
    unetOverrides: {
      sampleSize,
      multiview: bool(`${uk}.multiview_attention`, true),
      sparse: bool(`${uk}.sparse_mv_attention`, true),
      numViews: views,
    },
    cacheEncoderOutputs: bool('cache_encoder_outputs', true),
    tree,
  };
  if (config.checkpointsTotalLimit !== null && config.checkpointsTotalLimit < 1)
    throw new UserError(`${source}: checkpoints_total_limit must be ≥ 1 or null, got ${config.checkpointsTotalLimit}`);
  if (config.conditionDropRate < 0 || config.conditionDropRate * 3 > 1)
    throw new UserError(`${source}: condition_drop_rate must be in [0, 1/3], got ${config.conditionDropRate}`);
  return { config, unknownKeys };
}
