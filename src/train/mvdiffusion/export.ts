/**
 * The `pipeckpts/` export (spec mvdiffusion.md §8): the starting pipeline's frozen components copied unchanged,
 * the UNet with the EMA weights (when the run keeps them) under `unet/` in the official layout and names, the
 * DDIM scheduler, and a `model_index.json` naming FaceLift's UNet class — what `facelift infer --weights` and
 * FaceLift's own `StableUnCLIPImg2ImgPipeline.from_pretrained` load. The per-view prompt embeddings the run trained
 * with (`prompt_embed_path`) go along as `clr_embeds.pt`, so inference conditions the UNet as training did.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../util/errors.ts';
import { writeModelFolder } from './checkpoint.ts';
import { MV_UNET_MODULE } from './unet-init.ts';

export async function exportPipeline(
  base: string,
  out: string,
  unetConfig: Record<string, unknown>,
  weights: ReadonlyMap<string, Float32Array>,
  shapes: ReadonlyMap<string, readonly number[]>,
  promptEmbeds?: string,
): Promise<string> {
  const indexPath = join(base, 'model_index.json');
  if (!existsSync(indexPath)) throw new UserError(`${base} has no model_index.json; cannot export a pipeline from it`);
  const index = JSON.parse(readFileSync(indexPath, 'utf8')) as Record<string, unknown>;
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const name of readdirSync(base)) {
    // clr_embeds.pt: a pipeline without a text encoder keeps its fixed prompt embeddings beside the components.
    const keep = Object.hasOwn(index, name) || name === 'clr_embeds.pt';
    if (name === 'unet' || name === 'model_index.json' || !keep) continue;
    cpSync(join(base, name), join(tmp, name), { recursive: true });
  }
  if (promptEmbeds) cpSync(promptEmbeds, join(tmp, 'clr_embeds.pt'));
  const { _name_or_path: _drop, ...cleanConfig } = unetConfig;
  void _drop;
  await writeModelFolder(
    join(tmp, 'unet'),
    cleanConfig,
    [...weights].map(([name, data]) => ({ name, shape: shapes.get(name) ?? [data.length], data })),
  );
  const sched = join(tmp, 'scheduler', 'scheduler_config.json');
  if (existsSync(sched)) {
    const s = JSON.parse(readFileSync(sched, 'utf8')) as Record<string, unknown>;
    writeFileSync(sched, `${JSON.stringify({ ...s, _class_name: 'DDIMScheduler' }, null, 2)}\n`);
  }
  writeFileSync(
    join(tmp, 'model_index.json'),
    `${JSON.stringify({ ...index, _class_name: 'StableUnCLIPImg2ImgPipeline', scheduler: ['diffusers', 'DDIMScheduler'], unet: [...MV_UNET_MODULE] }, null, 2)}\n`,
  );
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  return out;
}
