/**
 * The UNet a run starts from (spec mvdiffusion.md §2, issue: "from SD-2.1-unCLIP or a FaceLift pipeline"):
 *  - a FaceLift `pipeckpts/` (its unet/ is `UNetMV2DConditionModel`): loaded as is. Its trained 8-channel
 *    `conv_in` is kept; the reference's `from_pretrained_2d` zeroes channels 4–7 whenever `zero_init_conv_in` is
 *    set, even here, which throws away what the condition latent learned (spec §2 note, mouse.md) — not copied.
 *  - a Stable Diffusion 2.1 unCLIP folder (unet/ is diffusers' `UNet2DConditionModel`): the multi-view UNet with
 *    the base's weights, block types renamed to their multi-view versions, and `conv_in` widened from 4 to 8 input
 *    channels — channels 4–7 zero with `zero_init_conv_in` (as the config says), else torch's default init.
 * Returns the UNet's config.json (as the checkpoint and the export write it), its parsed form and the weights.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseUNetConfig, type UNetConfig } from '../../diffusion/config.ts';
import { JsonFields } from '../../diffusion/json-fields.ts';
import { paramSpecs } from '../../diffusion/params.ts';
import { declareUNetParams } from '../../diffusion/unet-params.ts';
import { checkWeights } from '../../diffusion/weights.ts';
import { findWeightsFile } from '../../io/diffusers.ts';
import { openWeights } from '../../io/weights.ts';
import { createRng } from '../../synth/rng.ts';
import { UserError } from '../../util/errors.ts';
import type { MvTrainConfig } from './config.ts';

export const MV_UNET_CLASS = 'UNetMV2DConditionModel';
export const MV_UNET_MODULE = ['mvdiffusion.models.unet_mv2d_condition', MV_UNET_CLASS] as const;

const MV_BLOCK: Record<string, string> = {
  CrossAttnDownBlock2D: 'CrossAttnDownBlockMV2D',
  CrossAttnUpBlock2D: 'CrossAttnUpBlockMV2D',
  UNetMidBlock2DCrossAttn: 'UNetMidBlockMV2DCrossAttn',
};

export interface InitialUnet {
  /** The multi-view UNet's config.json content. */
  json: Record<string, unknown>;
  config: UNetConfig;
  /** Every parameter in state-dict order. */
  params: Map<string, Float32Array>;
  shapes: Map<string, readonly number[]>;
  /** 'facelift': fine-tuning a multi-view UNet; 'base': widened from a 4-channel SD UNet. */
  from: 'facelift' | 'base';
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new UserError(
      `cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
}

/** The multi-view config `from_pretrained_2d` builds from a base SD UNet config and the YAML's overrides. */
export function multiViewConfigJson(base: Record<string, unknown>, cfg: MvTrainConfig): Record<string, unknown> {
  const rename = (v: unknown) => (Array.isArray(v) ? v.map((t) => MV_BLOCK[t as string] ?? t) : v);
  const inChannels = typeof base.in_channels === 'number' ? base.in_channels : 4;
  return {
    ...base,
    _class_name: MV_UNET_CLASS,
    in_channels: 2 * inChannels,
    out_channels: typeof base.out_channels === 'number' ? base.out_channels : 4,
    sample_size: cfg.unetOverrides.sampleSize,
    down_block_types: rename(base.down_block_types),
    up_block_types: rename(base.up_block_types),
    mid_block_type: MV_BLOCK[base.mid_block_type as string] ?? base.mid_block_type,
    num_views: cfg.unetOverrides.numViews,
    multiview_attention: cfg.unetOverrides.multiview,
    sparse_mv_attention: cfg.unetOverrides.sparse,
    selfattn_block: 'custom',
    cd_attention_last: false,
    cd_attention_mid: false,
    addition_downsample: false,
  };
}

export async function initialUnet(cfg: MvTrainConfig, unetDir: string, say: (l: string) => void): Promise<InitialUnet> {
  const raw = readJson(join(unetDir, 'config.json'));
  const from = raw._class_name === MV_UNET_CLASS ? 'facelift' : 'base';
  const json = from === 'facelift' ? { ...raw } : multiViewConfigJson(raw, cfg);
  const config = parseUNetConfig(new JsonFields(`${unetDir}/config.json`, json as never));
  if (config.numViews !== cfg.views)
    throw new UserError(
      `${unetDir}: the UNet was trained for ${config.numViews} views, the config asks for n_views ${cfg.views}`,
    );
  if (config.sampleSize !== cfg.unetOverrides.sampleSize) {
    // The sample size only names the training resolution; the network itself is size-agnostic.
    json.sample_size = cfg.unetOverrides.sampleSize;
    config.sampleSize = cfg.unetOverrides.sampleSize;
  }
  const specs = paramSpecs((d) => declareUNetParams(d, config));
  const file = findWeightsFile(unetDir);
  if (!file) throw new UserError(`${unetDir} has no weights file (diffusion_pytorch_model.safetensors or .bin)`);
  const src = await openWeights(file);
  const params = new Map<string, Float32Array>();
  const shapes = new Map(specs.map((s) => [s.name, s.shape]));
  try {
    if (from === 'facelift') {
      checkWeights(src, specs, 'unet');
      for (const s of specs) params.set(s.name, await src.readF32(s.name));
      say(`fine-tuning the multi-view UNet of ${unetDir} (its trained ${config.inChannels}-channel conv_in is kept)`);
    } else {
      const base = specs.map((s) =>
        s.name === 'conv_in.weight' ? { ...s, shape: [s.shape[0]!, config.inChannels / 2, 3, 3] } : s,
      );
      checkWeights(src, base, 'unet');
      for (const s of specs) {
        if (s.name !== 'conv_in.weight') {
          params.set(s.name, await src.readF32(s.name));
          continue;
        }
        const [co, ci] = s.shape as [number, number];
        const half = ci / 2;
        const old = await src.readF32(s.name);
        const w = new Float32Array(co * ci * 9);
        const bound = 1 / Math.sqrt(ci * 9);
        const r = createRng(cfg.seed);
        for (let o = 0; o < co; o++) {
          for (let i = 0; i < ci; i++) {
            for (let k = 0; k < 9; k++) {
              w[(o * ci + i) * 9 + k] =
                i < half ? old[(o * half + i) * 9 + k]! : cfg.zeroInitConvIn ? 0 : (r.next() * 2 - 1) * bound;
            }
          }
        }
        params.set(s.name, w);
      }
      say(
        `starting from the base UNet of ${unetDir}: conv_in widened from ${config.inChannels / 2} to ${config.inChannels} ` +
          `input channels (${cfg.zeroInitConvIn ? 'zero' : 'randomly initialised'} for the condition latent)`,
      );
    }
  } finally {
    await src.close();
  }
  return { json, config, params, shapes, from };
}
