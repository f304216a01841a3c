/**
 * A complete weights folder in the official layout with tiny random models, for end-to-end tests:
 *   mvdiffusion/pipeckpts/  → the golden tiny diffusers folder (64×64 views; ../shared/golden/pipeline-tiny)
 *   gslrm/ckpt_0000000000000042.pt → the golden tiny GS-LRM checkpoint, a real torch.save zip ({"model": …})
 *   gslrm/config.yaml       → its config with image_size 64, so the GS-LRM takes the diffusion model's views
 * No clr_embeds.pt: the pipeline computes the prompt embeddings from text_encoder/ as it must for the hub layout.
 */
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const GOLDEN = new URL('../../../../shared/golden/', import.meta.url).pathname;
export const TINY_PIPECKPTS = join(GOLDEN, 'pipeline-tiny/pipeckpts');
export const TINY_CLR_EMBEDS = join(GOLDEN, 'pipeline-tiny/clr_embeds.pt');
export const TINY_GSLRM = join(GOLDEN, 'gslrm-tiny');

export function makeTinyWeights(dir: string, imageSize = 64): string {
  mkdirSync(join(dir, 'mvdiffusion'), { recursive: true });
  symlinkSync(TINY_PIPECKPTS, join(dir, 'mvdiffusion/pipeckpts'), 'dir');
  mkdirSync(join(dir, 'gslrm'), { recursive: true });
  copyFileSync(join(TINY_GSLRM, 'ckpt_0000000000000042.pt'), join(dir, 'gslrm/ckpt_0000000000000042.pt'));
  const cfg = readFileSync(join(TINY_GSLRM, 'config.yaml'), 'utf8').replace(/image_size: 32\b/, `image_size: ${imageSize}`);
  if (!cfg.includes(`image_size: ${imageSize}`)) throw new Error('tiny GS-LRM config: image_size not found');
  writeFileSync(join(dir, 'gslrm/config.yaml'), cfg);
  return dir;
}
