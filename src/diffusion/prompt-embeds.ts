/**
 * The fixed per-view prompt embeddings (spec mvdiffusion.md §4.1): FaceLift ships them as
 * `mvdiffusion/data/fixed_prompt_embeds_6view/clr_embeds.pt`, a bare fp16 tensor [6, 77, 1024] saved with
 * torch.save. Each view's cross-attention reads its own row, in the view order below.
 */
import { openWeights } from '../io/weights.ts';
import { UserError } from '../util/errors.ts';

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
      throw new UserError(`${path}: prompt embeddings have shape [${shape.join(', ')}], the UNet needs [${expect.views}, tokens, ${expect.width}]`);
    }
    return { data: await src.readF32(keys[0]!), views: shape[0]!, tokens: shape[1]!, width: shape[2]! };
  } finally {
    await src.close();
  }
}
