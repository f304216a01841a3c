/**
 * Where the per-view prompt embeddings come from (spec mvdiffusion.md §4.1). FaceLift keeps them in its git repo as
 * `mvdiffusion/data/fixed_prompt_embeds_6view/clr_embeds.pt`; they are not on the Hugging Face hub. When such a
 * file sits in the weights folder it is used; otherwise the diffusion module computes them from
 * `pipeckpts/text_encoder` + `tokenizer` and caches them (diffusion/prompt-embeds.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.ts';

export interface PromptEmbedsSource {
  /** clr_embeds.pt used as is, or undefined when computed from the text encoder. */
  path?: string;
  origin: 'file' | 'text_encoder';
}

/** Where FaceLift's own clr_embeds.pt may sit relative to a weights folder (first match wins). */
export function promptEmbedCandidates(weightsDir: string): string[] {
  return [
    join(weightsDir, 'mvdiffusion/data/fixed_prompt_embeds_6view/clr_embeds.pt'),
    join(weightsDir, 'mvdiffusion/clr_embeds.pt'),
    join(weightsDir, 'mvdiffusion/pipeckpts/clr_embeds.pt'),
    join(weightsDir, 'clr_embeds.pt'),
  ];
}

/** An explicit file (must exist), else the first candidate in the weights folder, else the text encoder. */
export function findPromptEmbeds(weightsDir: string, explicit?: string): PromptEmbedsSource {
  if (explicit) {
    if (!existsSync(explicit)) throw new UserError(`prompt embeddings file ${explicit} does not exist`);
    return { path: explicit, origin: 'file' };
  }
  const found = promptEmbedCandidates(weightsDir).find((p) => existsSync(p));
  return found ? { path: found, origin: 'file' } : { origin: 'text_encoder' };
}
