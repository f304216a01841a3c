/**
 * The per-view prompt embeddings the UNet cross-attends to (spec mvdiffusion.md §4.1). FaceLift keeps them in its
 * git repo as `mvdiffusion/data/fixed_prompt_embeds_6view/clr_embeds.pt`; they are not on the Hugging Face hub.
 * When no such file is found, they are computed the way FaceLift's `generate_fixed_text_embeds.py` made them —
 * `text_encoder(tokenizer(prompt, max_length padding)).last_hidden_state` for the six view prompts — and cached
 * as a one-tensor safetensors file keyed by the text encoder and tokenizer files.
 * (The reference ran the text encoder in fp16 and stored fp16; we compute and keep float32, which differs from an
 * fp16 run by ≤ 4e-3 on the tiny golden model.)
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Graph, Session } from '../core/index.ts';
import { declareClipTextParams } from '../diffusion/clip-params.ts';
import { ClipText } from '../diffusion/clip.ts';
import { parseClipTextConfig, readComponentConfig } from '../diffusion/config.ts';
import { paramSpecs } from '../diffusion/params.ts';
import { VIEW_PROMPTS } from '../diffusion/prompt-embeds.ts';
import { loadWeights } from '../diffusion/weights.ts';
import { findWeightsFile } from '../io/diffusers.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { UserError } from '../util/errors.ts';
import { ClipTokenizer } from './clip-tokenizer.ts';

export interface PromptEmbedsSource {
  /** A file `MvDiffusionPipeline.load` reads (`clr_embeds.pt`, or our cached .safetensors). */
  path: string;
  origin: 'file' | 'cache' | 'computed';
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

/** Token ids [views × maxLength] of FaceLift's view prompts. */
export function promptIds(tokenizer: ClipTokenizer, views: number): BigInt64Array {
  if (views > VIEW_PROMPTS.length) throw new UserError(`the UNet has ${views} views, FaceLift's prompts cover ${VIEW_PROMPTS.length}`);
  const L = tokenizer.maxLength;
  const ids = new BigInt64Array(views * L);
  VIEW_PROMPTS.slice(0, views).forEach((p, v) => tokenizer.encode(p).forEach((id, t) => { ids[v * L + t] = BigInt(id); }));
  return ids;
}

/** Runs the text encoder of a pipeckpts/ folder on the view prompts → [views, tokens, width] float32. */
export async function computePromptEmbeds(pipeckpts: string, views: number, threads?: number): Promise<{ data: Float32Array; shape: [number, number, number] }> {
  const tokenizer = ClipTokenizer.fromDir(join(pipeckpts, 'tokenizer'));
  const cfg = readComponentConfig(pipeckpts, 'text_encoder', parseClipTextConfig);
  const L = tokenizer.maxLength;
  const g = new Graph('clip-text');
  const hidden = new ClipText(g, cfg).forward(g.input('input_ids', [views, L], 'int64'));
  const params = await loadWeights(join(pipeckpts, 'text_encoder'), paramSpecs((d) => declareClipTextParams(d, cfg)), 'text_encoder');
  const s = await Session.create({ hidden }, { params, ...(threads ? { threads } : {}) });
  try {
    const r = await s.run({ input_ids: promptIds(tokenizer, views) });
    const data = r.hidden!.data as Float32Array;
    return { data, shape: [views, L, data.length / (views * L)] };
  } finally {
    await s.release();
  }
}

/** Cache key: the text encoder's weights and config, the tokenizer files, the prompts and the view count. */
function cacheKey(pipeckpts: string, views: number): string {
  const h = createHash('sha256');
  const weights = findWeightsFile(join(pipeckpts, 'text_encoder'));
  if (!weights) throw new UserError(`${join(pipeckpts, 'text_encoder')} has no weights file; cannot compute the prompt embeddings`);
  const st = statSync(weights);
  h.update(`${resolve(weights)}\0${st.size}\0${st.mtimeMs}\0${views}\0${VIEW_PROMPTS.join('\n')}\0`);
  for (const f of ['text_encoder/config.json', 'tokenizer/vocab.json', 'tokenizer/merges.txt', 'tokenizer/special_tokens_map.json', 'tokenizer/tokenizer_config.json']) {
    const p = join(pipeckpts, f);
    h.update(existsSync(p) ? readFileSync(p) : `missing ${f}`);
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * The prompt embeddings for a weights folder: FaceLift's clr_embeds.pt when present (`explicit`, then the usual
 * places), else a cached computation, else computed now and cached under `cacheDir`.
 */
export async function resolvePromptEmbeds(opts: {
  pipeckpts: string;
  weightsDir?: string;
  explicit?: string;
  cacheDir: string;
  views: number;
  threads?: number;
}): Promise<PromptEmbedsSource> {
  if (opts.explicit) {
    if (!existsSync(opts.explicit)) throw new UserError(`prompt embeddings file ${opts.explicit} does not exist`);
    return { path: opts.explicit, origin: 'file' };
  }
  for (const p of opts.weightsDir ? promptEmbedCandidates(opts.weightsDir) : []) if (existsSync(p)) return { path: p, origin: 'file' };
  const cached = join(opts.cacheDir, `clr_embeds-${cacheKey(opts.pipeckpts, opts.views)}.safetensors`);
  if (existsSync(cached)) return { path: cached, origin: 'cache' };
  const { data, shape } = await computePromptEmbeds(opts.pipeckpts, opts.views, opts.threads);
  await mkdir(opts.cacheDir, { recursive: true });
  await writeSafetensors(cached, { clr_embeds: { shape, data } }, { source: 'facelift-ts: text_encoder(tokenizer(view prompts)).last_hidden_state' });
  return { path: cached, origin: 'computed' };
}
