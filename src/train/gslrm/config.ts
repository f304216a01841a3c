/**
 * The whole GS-LRM training config in the layout of FaceLift's `configs/gslrm*.yaml` (spec gslrm.md §6–8) and the
 * fork's `mouse_gslrm_*.yaml` (spec mouse.md §8): model, training (runtime, dataset, dataloader, losses, optimizer,
 * schedule, checkpointing, logging), validation. Official files load unchanged.
 */
import { isAbsolute, resolve } from 'node:path';
import { parseGslrmConfig, type GslrmConfig } from '../../lrm/config.ts';
import { UserError } from '../../util/errors.ts';
import type { UprightOptions } from '../../mouse/normalize.ts';
import { rangeOf, type ViewAugmentation } from '../augment.ts';
import { at, checkTree, dumpYaml, type Schema, type Tree } from '../config-tree.ts';

const SCHEMA: Schema = {
  profile: 'bool',
  debug: 'bool',
  seed: 'int',
  model: 'any',
  training: {
    runtime: {
      use_tf32: 'bool',
      use_amp: 'bool',
      amp_dtype: 'string',
      torch_compile: 'bool',
      grad_accum_steps: 'int',
      grad_clip_norm: 'number',
      grad_checkpoint_every: 'int',
      allowed_gradnorm_factor: 'number',
    },
    dataset: {
      dataset_path: 'string',
      maximize_view_overlap: 'bool',
      num_views: 'int',
      num_input_views: 'int',
      input_views: 'any',
      target_has_input: 'bool',
      normalize_distance_to: 'number',
      remove_alpha: 'bool',
      background_color: 'any',
    },
    dataloader: { batch_size_per_gpu: 'int', num_workers: 'int', num_threads: 'int', prefetch_factor: 'int' },
    losses: {
      l2_loss_weight: 'number',
      lpips_loss_weight: 'number',
      perceptual_loss_weight: 'number',
      ssim_loss_weight: 'number',
      pixelalign_loss_weight: 'number',
      masked_pixelalign_loss: 'bool',
      pointsdist_loss_weight: 'number',
      warmup_pointsdist: 'bool',
      distill_loss_weight: 'number',
      clamp_rendering: 'bool',
      masked_l2_loss: 'bool',
      masked_ssim_loss: 'bool',
      background_loss_weight: 'number',
      background_color_target: 'any',
    },
    optimizer: {
      lr: 'number',
      beta1: 'number',
      beta2: 'number',
      weight_decay: 'number',
      reset_lr: 'bool',
      use_8bit_adam: 'bool',
      reset_weight_decay: 'bool',
      reset_training_state: 'bool',
    },
    schedule: {
      num_epochs: 'int',
      early_stop_after_epochs: 'int',
      max_fwdbwd_passes: 'int',
      warmup: 'int',
      l2_warmup_steps: 'int',
    },
    checkpointing: { resume_ckpt: 'string?', checkpoint_every: 'int', checkpoint_dir: 'string' },
    logging: { print_every: 'int', vis_every: 'int', wandb: 'any' },
    freeze_layers: {
      enabled: 'bool',
      freeze_transformer_until: 'int',
      freeze_patch_embedder: 'bool',
      freeze_positional_embeddings: 'bool',
    },
  },
  inference: 'any',
  validation: { enabled: 'bool', val_every: 'int', output_dir: 'string', dataset_path: 'string' },
  mouse: {
    use_mouse_dataset: 'bool',
    normalize_cameras: 'bool',
    target_camera_distance: 'number',
    normalize_to_z_up: 'bool',
    auto_generate_mask: 'bool',
    augmentation: {
      enabled: 'bool',
      brightness_range: 'any',
      contrast_range: 'any',
      hflip: 'bool',
      horizontal_flip: 'bool',
      rotation_range: 'any',
    },
  },
};

export type BackgroundSpec = 'white' | 'black' | 'gray' | 'random' | 'three_choices' | number;

export interface GslrmTrainConfig {
  model: GslrmConfig;
  seed: number;
  runtime: {
    gradAccum: number;
    clipNorm: number;
    allowedGradnormFactor: number;
    /**
     * The reference's `grad_checkpoint_every` (layers per checkpoint; default 1). Any value ≥ 1 recomputes each
     * layer in the backward from its input; 0 checkpoints nothing: every activation the backward reads is kept
     * from the forward (no forward work in the backward; memory that grows with the tokens).
     */
    gradCheckpointEvery: number;
  };
  dataset: {
    path: string;
    numViews: number;
    numInputViews: number;
    /**
     * facelift-ts: fixed input views (rig indices, in this order) with the other views drawn at random as targets —
     * training the reconstructor on the views it gets at inference (FaceLift's six are rig views 24, 20, 16, 8, 0,
     * 28 of `synth heads --elevations 0,20`). Absent: the reference's random draw.
     */
    inputViews: number[] | null;
    maximizeOverlap: boolean;
    background: BackgroundSpec;
    removeAlpha: boolean;
  };
  batchSize: number;
  losses: {
    l2: number;
    perceptual: number;
    lpips: number;
    ssim: number;
    pixelalign: number;
    maskedPixelalign: boolean;
    pointsdist: number;
    warmupPointsdist: boolean;
    clampRendering: boolean;
    maskedL2: boolean;
    maskedSsim: boolean;
    backgroundWeight: number;
    backgroundColor: [number, number, number];
  };
  optimizer: {
    lr: number;
    betas: [number, number];
    weightDecay: number;
    resetTrainingState: boolean;
    use8bit: boolean;
  };
  schedule: { numEpochs: number; maxPasses: number; warmup: number; l2WarmupSteps: number };
  checkpointing: { resumeCkpt: string | null; every: number; dir: string };
  logging: { printEvery: number; visEvery: number };
  freeze: { enabled: boolean; transformerUntil: number; patchEmbedder: boolean; positionalEmbeddings: boolean };
  validation: { enabled: boolean; every: number; datasetPath: string | null };
  /** The fork's `MouseViewDataset` (`mouse.use_mouse_dataset`), or null for `RandomViewDataset`. */
  mouse: MouseDatasetConfig | null;
  /** The resolved tree, as written to the run folder. */
  tree: Tree;
}

/**
 * The fork's mouse dataset (spec mouse.md §8.2): views in their fixed order (inputs 0..num_input_views−1, targets
 * all), RGB views given an alpha where they are not near-white, the rig turned upright and scaled (uprightRig:
 * one similarity per sample, so images and cameras keep agreeing), one brightness/contrast change for all views.
 */
export interface MouseDatasetConfig {
  cameras: UprightOptions | null;
  autoMask: boolean;
  augmentation: ViewAugmentation | null;
}

export interface LossWeights { l2: number; perceptual: number; lpips: number; ssim: number; pointsdist: number }

/**
 * Loss weights in force at a forward/backward pass (`set_training_step`, spec §7.2): during the stage-I points-distance
 * warm-up (first 1000 passes) L2 and perceptual are off and points-distance is 0.1; during `l2_warmup_steps`
 * the perceptual and LPIPS weights are 0. SSIM is never warmed up.
 */
export function lossWeightsAt(cfg: GslrmTrainConfig, pass: number): LossWeights {
  let { l2, perceptual, lpips, pointsdist } = cfg.losses;
  if (cfg.losses.warmupPointsdist && pass < 1000) {
    l2 = 0;
    perceptual = 0;
    pointsdist = 0.1;
  }
  if (cfg.schedule.l2WarmupSteps > 0 && pass < cfg.schedule.l2WarmupSteps) {
    perceptual = 0;
    lpips = 0;
  }
  return { l2, perceptual, lpips, ssim: cfg.losses.ssim, pointsdist };
}

export interface ParsedConfig {
  config: GslrmTrainConfig;
  unknownKeys: string[];
  /** Keys read but without effect in this configuration, with why. */
  notes: string[];
}

/**
 * Reads a GS-LRM training config tree. Relative paths in it are resolved against `baseDir` (the working
 * directory, as the reference's scripts are run from the repository root).
 */
export function parseGslrmTrainConfig(tree: Tree, source: string, baseDir = process.cwd()): ParsedConfig {
  const unknownKeys = checkTree(tree, SCHEMA, source);
  if (tree.model === undefined) throw new UserError(`${source}: no model: section (see configs/gslrm.yaml)`);
  const model = parseGslrmConfig(dumpYaml({ model: tree.model }), source);
  const num = <T>(path: string, dflt: T): number | T => {
    const v = at(tree, path);
    return v === undefined || v === null ? dflt : (v as number);
  };
  const bool = (path: string, dflt: boolean): boolean => {
    const v = at(tree, path);
    return v === undefined || v === null ? dflt : (v as boolean);
  };
  const str = (path: string): string | null => {
    const v = at(tree, path);
    return typeof v === 'string' ? v : null;
  };
  const need = (path: string): number => {
    const v = at(tree, path);
    if (typeof v !== 'number') throw new UserError(`${source}: ${path} is missing (see configs/gslrm.yaml)`);
    return v;
  };
  const path = (p: string | null): string | null => (p === null ? null : isAbsolute(p) ? p : resolve(baseDir, p));
  const nonNegativeInt = (name: string, dflt: number): number => {
    const v = num(name, dflt);
    if (!(Number.isInteger(v) && v >= 0)) throw new UserError(`${source}: ${name} must be a whole number ≥ 0, got ${v}`);
    return v;
  };
  const positive = (name: string, v: number): number => {
    if (!(v > 0)) throw new UserError(`${source}: ${name} must be positive, got ${v}`);
    return v;
  };

  const numViews = positive('training.dataset.num_views', need('training.dataset.num_views'));
  const numInputViews = positive('training.dataset.num_input_views', need('training.dataset.num_input_views'));
  if (numInputViews > numViews)
    throw new UserError(
      `${source}: training.dataset.num_input_views (${numInputViews}) exceeds num_views (${numViews})`,
    );
  const rawInputs = at(tree, 'training.dataset.input_views') ?? null;
  if (rawInputs !== null && !(Array.isArray(rawInputs) && rawInputs.length === numInputViews &&
    rawInputs.every((v) => Number.isInteger(v) && v >= 0) && new Set(rawInputs).size === rawInputs.length)) {
    throw new UserError(`${source}: training.dataset.input_views must list num_input_views (${numInputViews}) distinct view ` +
      `indices, got ${JSON.stringify(rawInputs)}`);
  }
  const datasetPath = str('training.dataset.dataset_path');
  if (!datasetPath)
    throw new UserError(`${source}: training.dataset.dataset_path is missing (a text file listing sample folders)`);
  const bg = at(tree, 'training.dataset.background_color') ?? 'white';
  if (!(typeof bg === 'number' || ['white', 'black', 'gray', 'random', 'three_choices'].includes(bg as string))) {
    throw new UserError(
      `${source}: training.dataset.background_color must be white, black, gray, random, three_choices or a number, got ${JSON.stringify(bg)}`,
    );
  }
  const lossW = (k: string) => num(`training.losses.${k}`, 0);
  const notes: string[] = [];
  const mouse = parseMouse(tree, source, notes);
  if (mouse && rawInputs !== null) {
    throw new UserError(`${source}: training.dataset.input_views and mouse.use_mouse_dataset both choose the input ` +
      'views (the mouse dataset takes views 0..num_input_views−1); keep one');
  }
  const config: GslrmTrainConfig = {
    model,
    seed: num('seed', 777),
    runtime: {
      gradAccum: positive('training.runtime.grad_accum_steps', num('training.runtime.grad_accum_steps', 1)),
      clipNorm: positive('training.runtime.grad_clip_norm', num('training.runtime.grad_clip_norm', 1.0)),
      allowedGradnormFactor: num('training.runtime.allowed_gradnorm_factor', 20),
      gradCheckpointEvery: nonNegativeInt('training.runtime.grad_checkpoint_every', 1),
    },
    dataset: {
      path: path(datasetPath)!,
      numViews,
      numInputViews,
      inputViews: rawInputs as number[] | null,
      maximizeOverlap: bool('training.dataset.maximize_view_overlap', false),
      background: bg as BackgroundSpec,
      removeAlpha: bool('training.dataset.remove_alpha', false),
    },
    batchSize: positive('training.dataloader.batch_size_per_gpu', num('training.dataloader.batch_size_per_gpu', 1)),
    losses: {
      l2: num('training.losses.l2_loss_weight', 1),
      perceptual: lossW('perceptual_loss_weight'),
      lpips: lossW('lpips_loss_weight'),
      ssim: lossW('ssim_loss_weight'),
      pixelalign: lossW('pixelalign_loss_weight'),
      maskedPixelalign: bool('training.losses.masked_pixelalign_loss', false),
      pointsdist: lossW('pointsdist_loss_weight'),
      warmupPointsdist: bool('training.losses.warmup_pointsdist', false),
      // The fork clamps by default; the original code has no such key and never clamps (spec §5, §7.4).
      clampRendering: bool('training.losses.clamp_rendering', false),
      maskedL2: bool('training.losses.masked_l2_loss', false),
      maskedSsim: bool('training.losses.masked_ssim_loss', false),
      backgroundWeight: lossW('background_loss_weight'),
      backgroundColor: rgbTriple(at(tree, 'training.losses.background_color_target') ?? [1, 1, 1], source),
    },
    optimizer: {
      lr: positive('training.optimizer.lr', need('training.optimizer.lr')),
      betas: [num('training.optimizer.beta1', 0.9), num('training.optimizer.beta2', 0.95)],
      weightDecay: num('training.optimizer.weight_decay', 0.05),
      resetTrainingState: bool('training.optimizer.reset_training_state', false),
      // Not a key of the GS-LRM configs (the diffusion trainer's `use_8bit_adam`): bitsandbytes' 8-bit AdamW.
      use8bit: bool('training.optimizer.use_8bit_adam', false),
    },
    schedule: {
      numEpochs: num('training.schedule.num_epochs', 100000),
      maxPasses: positive('training.schedule.max_fwdbwd_passes', need('training.schedule.max_fwdbwd_passes')),
      warmup: num('training.schedule.warmup', 0),
      l2WarmupSteps: num('training.schedule.l2_warmup_steps', 0),
    },
    checkpointing: {
      resumeCkpt: path(str('training.checkpointing.resume_ckpt')),
      every: positive('training.checkpointing.checkpoint_every', num('training.checkpointing.checkpoint_every', 1000)),
      dir: path(str('training.checkpointing.checkpoint_dir') ?? 'checkpoints/gslrm/run')!,
    },
    logging: { printEvery: num('training.logging.print_every', 20), visEvery: num('training.logging.vis_every', 250) },
    freeze: {
      enabled: bool('training.freeze_layers.enabled', false),
      transformerUntil: num('training.freeze_layers.freeze_transformer_until', 20),
      patchEmbedder: bool('training.freeze_layers.freeze_patch_embedder', true),
      positionalEmbeddings: bool('training.freeze_layers.freeze_positional_embeddings', false),
    },
    validation: {
      enabled: bool('validation.enabled', false),
      every: num('validation.val_every', 5000),
      datasetPath: path(str('validation.dataset_path')),
    },
    mouse,
    tree,
  };
  return { config, unknownKeys, notes };
}

function parseMouse(tree: Tree, source: string, notes: string[]): MouseDatasetConfig | null {
  const get = (k: string) => at(tree, `mouse.${k}`);
  const flag = (k: string, dflt: boolean) => (get(k) ?? dflt) as boolean;
  const augOn = flag('augmentation.enabled', false);
  if (!flag('use_mouse_dataset', false)) {
    // The fork's RandomViewDataset reads none of the section (mouse_gslrm_synthetic.yaml enables augmentation there).
    if (augOn) notes.push('mouse.augmentation is read by the mouse dataset only (mouse.use_mouse_dataset: true)');
    return null;
  }
  for (const k of ['hflip', 'horizontal_flip'] as const) {
    if (flag(`augmentation.${k}`, false)) {
      throw new UserError(`${source}: mouse.augmentation.${k} would mirror the views, and no rotation of the cameras ` +
        'matches a mirrored image; set it false');
    }
  }
  const rot = get('augmentation.rotation_range') ?? 0;
  if (!(rot === 0 || (Array.isArray(rot) && rot.every((v) => v === 0)))) {
    throw new UserError(`${source}: mouse.augmentation.rotation_range rotates views without their cameras ` +
      '(they would stop agreeing); set it to 0');
  }
  let augmentation: ViewAugmentation | null = null;
  if (augOn) {
    try {
      augmentation = {
        brightness: rangeOf(get('augmentation.brightness_range'), 'mouse.augmentation.brightness_range'),
        contrast: rangeOf(get('augmentation.contrast_range'), 'mouse.augmentation.contrast_range'),
      };
    } catch (e) {
      throw new UserError(`${source}: ${(e as Error).message}`);
    }
  }
  const distance = (get('target_camera_distance') ?? 2.7) as number;
  if (!(distance >= 0)) throw new UserError(`${source}: mouse.target_camera_distance must be ≥ 0, got ${distance}`);
  return {
    cameras: flag('normalize_cameras', true) ? { up: flag('normalize_to_z_up', true) ? 'z' : 'y', distance } : null,
    autoMask: flag('auto_generate_mask', true),
    augmentation,
  };
}

function rgbTriple(v: unknown, source: string): [number, number, number] {
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new UserError(
      `${source}: training.losses.background_color_target must be a list of 3 numbers, got ${JSON.stringify(v)}`,
    );
  }
  return [v[0], v[1], v[2]];
}
