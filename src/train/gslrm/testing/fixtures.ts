/** Test fixtures: small synthetic-head datasets written by `facelift synth heads`, and train configs for them. */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const BIN = new URL('../../../../bin/facelift.js', import.meta.url).pathname;

/**
 * Writes `count` coarse heads (spacing 0.02, ~1.5 s each) at `resolution`² in the GS-LRM layout (or the
 * MV-diffusion one); returns DIR/<layout>.
 */
export async function synthHeads(
  dir: string,
  count: number,
  resolution: number,
  opts: { seed?: number; valFraction?: number; spacing?: number; layout?: 'gslrm' | 'mvdiffusion' } = {},
): Promise<string> {
  await run(
    process.execPath,
    [
      BIN,
      'synth',
      'heads',
      '-o',
      dir,
      '--count',
      String(count),
      '--resolution',
      String(resolution),
      '--layout',
      opts.layout ?? 'gslrm',
      '--no-ply',
      '--spacing',
      String(opts.spacing ?? 0.02),
      '--seed',
      String(opts.seed ?? 0),
      '--val-fraction',
      String(opts.valFraction ?? 0),
    ],
    { maxBuffer: 16 << 20 },
  );
  return join(dir, opts.layout ?? 'gslrm');
}

export interface SmallConfig {
  dataset: string;
  checkpointDir: string;
  size?: number;
  d?: number;
  dHead?: number;
  layers?: number;
  nIn?: number;
  nViews?: number;
  passes?: number;
  lr?: number;
  warmup?: number;
  checkpointEvery?: number;
  printEvery?: number;
  visEvery?: number;
  batch?: number;
  validation?: string;
  valEvery?: number;
  seed?: number;
}

/** A small training config in the official layout (YAML text). */
export function smallConfigYaml(c: SmallConfig): string {
  return `seed: ${c.seed ?? 1}
model:
  class_name: gslrm.model.gslrm.GSLRM
  image_tokenizer: { image_size: ${c.size ?? 32}, patch_size: 8, in_channels: 9 }
  transformer: { d: ${c.d ?? 32}, d_head: ${c.dHead ?? 16}, n_layer: ${c.layers ?? 1} }
  gaussians: { n_gaussians: 2, sh_degree: 0, upsampler: { upsample_factor: 1 } }
  add_refsrc_marker: false
  hard_pixelalign: true
  use_custom_plucker: true
  clip_xyz: true
training:
  runtime: { grad_accum_steps: 1, grad_clip_norm: 1.0 }
  dataset:
    dataset_path: ${c.dataset}
    maximize_view_overlap: true
    num_views: ${c.nViews ?? 6}
    num_input_views: ${c.nIn ?? 4}
    background_color: white
  dataloader: { batch_size_per_gpu: ${c.batch ?? 1} }
  losses: { l2_loss_weight: 1.0, perceptual_loss_weight: 0.0 }
  optimizer: { lr: ${c.lr ?? 0.001}, beta1: 0.9, beta2: 0.95, weight_decay: 0.05 }
  schedule: { max_fwdbwd_passes: ${c.passes ?? 10}, warmup: ${c.warmup ?? 2}, l2_warmup_steps: 0 }
  checkpointing: { checkpoint_every: ${c.checkpointEvery ?? 1000}, checkpoint_dir: ${c.checkpointDir} }
  logging: { print_every: ${c.printEvery ?? 1}, vis_every: ${c.visEvery ?? 1000} }
validation:
  enabled: ${c.validation ? 'true' : 'false'}
  val_every: ${c.valEvery ?? 1000}
  dataset_path: ${c.validation ?? 'none.txt'}
`;
}

/** Writes `smallConfigYaml(c)` to `path`; returns the path. */
export function writeSmallConfig(path: string, c: SmallConfig): string {
  writeFileSync(path, smallConfigYaml(c));
  return path;
}
