/**
 * Test fixtures for MV-diffusion training on the golden tiny pipeline (64² views, 8² latents): the `--set`
 * overrides that point configs/mvdiffusion.yaml at it, and a tiny Stable Diffusion 2.1 unCLIP-style base folder
 * made from it (a 4-channel `UNet2DConditionModel` with 2-D block types, diffusers' own class names).
 */
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../../../io/safetensors.ts';

export const GOLDEN = new URL('../../../../../shared/golden/', import.meta.url).pathname;
export const TINY_PIPECKPTS = join(GOLDEN, 'pipeline-tiny/pipeckpts');
export const TINY_CLR_EMBEDS = join(GOLDEN, 'pipeline-tiny/clr_embeds.pt');
export const OFFICIAL_CONFIG = new URL('../../../../configs/mvdiffusion.yaml', import.meta.url).pathname;

export interface TinyRun {
  data: string;
  out: string;
  steps: number;
  checkpointEvery?: number;
  batch?: number;
  accum?: number;
  lr?: number;
  pretrained?: string;
  validation?: boolean;
  extra?: string[];
}

/** `--set` overrides of configs/mvdiffusion.yaml for a run on the tiny pipeline. */
export function tinySets(r: TinyRun): string[] {
  const sets = [
    `pretrained_model_name_or_path=${r.pretrained ?? TINY_PIPECKPTS}`,
    `prompt_embed_path=${TINY_CLR_EMBEDS}`,
    'img_wh=64',
    'unet_from_pretrained_kwargs.sample_size=8',
    `train_dataset.path=${join(r.data, 'data_mvdiff_train.txt')}`,
    `validation_dataset.path=${r.validation ? join(r.data, 'data_mvdiff_val.txt') : 'null'}`,
    'checkpoint_prefix=',
    `output_dir=${r.out}`,
    `val_out_dir=${join(r.out, 'val')}`,
    `train_batch_size=${r.batch ?? 1}`,
    `gradient_accumulation_steps=${r.accum ?? 1}`,
    `max_train_steps=${r.steps}`,
    `checkpointing_steps=${r.checkpointEvery ?? r.steps}`,
    'validation_steps=1000',
  ];
  if (r.lr !== undefined) sets.push(`learning_rate=${r.lr}`);
  return [...sets, ...(r.extra ?? [])];
}

/** A tiny SD-2.1-unCLIP-layout folder: the tiny pipeline with a 4-input-channel 2-D UNet (conv_in's first 4 channels). */
export async function makeTinyBase(dir: string): Promise<string> {
  rmSync(dir, { recursive: true, force: true });
  cpSync(TINY_PIPECKPTS, dir, { recursive: true });
  const cfgPath = join(dir, 'unet/config.json');
  const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
  for (const k of [
    'num_views',
    'multiview_attention',
    'sparse_mv_attention',
    'selfattn_block',
    'cd_attention_last',
    'cd_attention_mid',
    'addition_downsample',
    'addition_channels',
  ])
    delete cfg[k];
  const base = {
    ...cfg,
    _class_name: 'UNet2DConditionModel',
    in_channels: 4,
    sample_size: 96,
    down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
    up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
    mid_block_type: 'UNetMidBlock2DCrossAttn',
  };
  writeFileSync(cfgPath, JSON.stringify(base, null, 2));
  const file = join(dir, 'unet/diffusion_pytorch_model.safetensors');
  const src = await SafetensorsFile.open(file);
  const tensors = new Map<string, TensorToWrite>();
  try {
    for (const k of src.keys()) {
      const data = await src.readF32(k);
      const shape = src.info(k).shape;
      if (k !== 'conv_in.weight') {
        tensors.set(k, { shape, data });
        continue;
      }
      const [co, ci] = shape as [number, number];
      const w = new Float32Array(co * 4 * 9);
      for (let o = 0; o < co; o++)
        for (let i = 0; i < 4; i++) w.set(data.subarray((o * ci + i) * 9, (o * ci + i + 1) * 9), (o * 4 + i) * 9);
      tensors.set(k, { shape: [co, 4, 3, 3], data: w });
    }
  } finally {
    await src.close();
  }
  rmSync(file);
  await writeSafetensors(file, tensors);
  const index = JSON.parse(readFileSync(join(dir, 'model_index.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(
    join(dir, 'model_index.json'),
    JSON.stringify({ ...index, unet: ['diffusers', 'UNet2DConditionModel'] }, null, 2),
  );
  return dir;
}
