/**
 * The fixed per-view prompt embeddings (spec mvdiffusion.md §4.1): FaceLift ships them as
 * `mvdiffusion/data/fixed_prompt_embeds_6view/clr_embeds.pt`, a bare fp16 tensor [6, 77, 1024] saved with
 * torch.save. Each view's cross-attention reads its own row, in the view order below.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Graph, Session } from '../core/index.ts';
import { findWeightsFile } from '../io/diffusers.ts';
import { writeSafetensors } from '../io/safetensors.ts';
import { openWeights } from '../io/weights.ts';
import { UserError } from '../util/errors.ts';
import { ClipText } from './clip.ts';
import { declareClipTextParams } from './clip-params.ts';
import { parseClipTextConfig, readComponentConfig } from './config.ts';
import { paramSpecs } from './params.ts';
import { ClipTokenizer } from './tokenizer.ts';
import { loadWeights } from './weights.ts';

export const VIEW_NAMES = ['front', 'front_right', 'right', 'back', 'left', 'front_left'] as const;

/** The prompt of each view (underscore spelling as in FaceLift's generator script). */
export const VIEW_PROMPTS = VIEW_NAMES.map((v) => `a rendering image of 3D models, ${v} view, color map.`);

export interface PromptEmbeds {
  /** [views, tokens, width] float32. */
  data: Float32Array;
  views: number;
  tokens: number;
  width: number;
}

/** Reads `clr_embeds.pt` (or a .safetensors with one tensor) and checks it against the UNet's expectations. */
export async function loadPromptEmbeds(path: string, expect: { views: number; width: number }): Promise<PromptEmbeds> {
  const src = await openWeights(path);
  try {
    const keys = src.keys();
    if (keys.length !== 1) throw new UserError(`${path}: expected one tensor of prompt embeddings [${expect.views}, 77, ${expect.width}], found ${keys.length} tensors`);
    const { shape } = src.info(keys[0]!);
    if (shape.length !== 3 || shape[0] !== expect.views || shape[2] !== expect.width) {
      // The mouse fork ships [6, 77, 768] embeddings from CLIP ViT-L/14 (SD 1.x's text encoder), which SD-2.1's UNet
      // cannot read (spec mouse.md §6, §9 #14).
      const hint = shape[2] === 768 && expect.width === 1024
        ? " — 768-wide embeddings come from CLIP ViT-L/14 (SD 1.x); FaceLift's UNet reads SD-2.1's 1024-wide ones " +
          "(use FaceLift's clr_embeds.pt, or leave prompt_embed_path out to compute them with the pipeline's text " +
          'encoder)'
        : '';
      throw new UserError(`${path}: prompt embeddings have shape [${shape.join(', ')}], the UNet needs ` +
        `[${expect.views}, tokens, ${expect.width}]${hint}`);
    }
    return { data: await src.readF32(keys[0]!), views: shape[0]!, tokens: shape[1]!, width: shape[2]! };
  } finally {
    await src.close();
  }
}

/**
 * Computes the per-view prompt embeddings from the pipeline's own `tokenizer/` and `text_encoder/`
 * (FaceLift's generate_fixed_text_embeds.py: `text_encoder(ids)[0]`, the last hidden state, which for SD-2.x's
 * 23-layer tower is OpenCLIP's penultimate layer). Computed in float32; the shipped clr_embeds.pt was computed in
 * fp16, so the two differ by ~4e-3. With `cacheDir`, the result is stored there as safetensors, keyed by the
 * encoder's config, weight file and the prompts, and reused.
 */
export async function computePromptEmbeds(pipelineDir: string, opts: { cacheDir?: string; threads?: number } = {}): Promise<PromptEmbeds> {
  const teDir = join(pipelineDir, 'text_encoder');
  const weights = findWeightsFile(teDir);
  if (!weights || !existsSync(join(pipelineDir, 'tokenizer'))) {
    throw new UserError(`${pipelineDir}: no clr_embeds.pt was given and the pipeline has no text_encoder/ weights and tokenizer/ to compute them; pass the prompt embeddings file`);
  }
  const key = createHash('sha256')
    .update(readFileSync(join(teDir, 'config.json'))).update(`${weights}:${statSync(weights).size}:${statSync(weights).mtimeMs}`)
    .update(JSON.stringify(VIEW_PROMPTS)).digest('hex').slice(0, 16);
  const cacheFile = opts.cacheDir ? join(opts.cacheDir, `prompt-embeds-${key}.safetensors`) : null;
  if (cacheFile && existsSync(cacheFile)) {
    const src = await openWeights(cacheFile);
    try {
      const { shape } = src.info('prompt_embeds');
      return { data: await src.readF32('prompt_embeds'), views: shape[0]!, tokens: shape[1]!, width: shape[2]! };
    } finally {
      await src.close();
    }
  }
  const cfg = readComponentConfig(pipelineDir, 'text_encoder', parseClipTextConfig);
  const tok = ClipTokenizer.fromDir(join(pipelineDir, 'tokenizer'));
  const ids = BigInt64Array.from(VIEW_PROMPTS.flatMap((p) => tok.encode(p)), (v) => BigInt(v));
  const g = new Graph('clip-text');
  const hidden = new ClipText(g, cfg).forward(g.input('input_ids', [VIEW_PROMPTS.length, tok.maxLength], 'int64'));
  const params = await loadWeights(teDir, paramSpecs((d) => declareClipTextParams(d, cfg)), 'text_encoder');
  const s = await Session.create({ hidden }, { params, ...(opts.threads ? { threads: opts.threads } : {}) });
  let data: Float32Array;
  try {
    data = (await s.run({ input_ids: ids })).hidden!.data as Float32Array;
  } finally {
    await s.release();
  }
  const out = { data, views: VIEW_PROMPTS.length, tokens: tok.maxLength, width: cfg.hiddenSize };
  if (cacheFile) {
    mkdirSync(opts.cacheDir!, { recursive: true });
    await writeSafetensors(cacheFile, { prompt_embeds: { shape: [out.views, out.tokens, out.width], data } }, { prompts: JSON.stringify(VIEW_PROMPTS) });
  }
  return out;
}
