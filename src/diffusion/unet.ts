/**
 * FaceLift's multi-view UNet (`UNetMV2DConditionModel`, spec mvdiffusion.md §2–3) as a graph on the compute core.
 *
 * The batch holds groups of `numViews` consecutive items, the views of one object; with CFG the batch of 12 is
 * [6 unconditional ‖ 6 conditional]. Every transformer block does
 *   x += attn1_mv(LN1 x);  x += attn2(LN2 x, prompt of that view);  x += GEGLU-FF(LN3 x)
 * where attn1_mv is the sparse multi-view self-attention that was trained: each view's queries attend to the
 * keys/values of [front view (view 0 of its group) ‖ own view]. The front view thus attends to itself twice,
 * which is plain self-attention (its output never depends on the other views).
 */
import {
  add, concat, expand, gelu, mergeHeads, mul, narrow, reshape, sdpa, silu, split, splitHeads, upsampleNearest2x, type Graph, type Tensor,
} from '../core/index.ts';
import type { UNetConfig } from './config.ts';
import { conv, fromTokens, gn, linear, ln, resnet, toTokens } from './layers.ts';
import type { ParamDeclarer } from './params.ts';
import { declareUNetParams, type AttentionP, type Transformer2DP, type UNetParams } from './unet-params.ts';

/** diffusers hard-codes this epsilon for the GroupNorm at the entry of every transformer (not `norm_eps`). */
const TRANSFORMER_GN_EPS = 1e-6;
const LN_EPS = 1e-5;


export type MultiViewMode = UNetConfig['multiViewAttention'];

/**
 * Keys (or values) [N, T, C] arranged for multi-view attention. sparse: [front ‖ own] → [N, 2T, C];
 * dense: all views of the group → [N, V·T, C]; none: unchanged.
 */
export function multiViewKeys(k: Tensor, views: number, mode: MultiViewMode): Tensor {
  if (mode === 'none') return k;
  const [n, t, c] = k.shape as [number, number, number];
  if (n % views !== 0) throw new Error(`multi-view attention: batch ${n} is not a multiple of ${views} views`);
  const groups = n / views;
  const grouped = reshape(k, [groups, views, t, c]);
  if (mode === 'sparse') {
    const front = expand(narrow(grouped, 1, 0, 1), [groups, views, t, c]);
    return reshape(concat([front, grouped], 2), [n, 2 * t, c]);
  }
  const all = expand(reshape(k, [groups, 1, views * t, c]), [groups, views, views * t, c]);
  return reshape(all, [n, views * t, c]);
}

/** How attention is computed (results are the same to fp32 rounding; memory and speed differ). */
export interface AttentionOptions {
  /** Upper bound on one score block [N, heads, chunk, keys] in bytes; queries are chunked to fit (default 256 MiB). */
  scoreBlockBytes?: number;
  /** Lower each block to ONNX-23 `Attention` instead of MatMul/Softmax/MatMul. */
  fused?: boolean;
}

function attention(x: Tensor, context: Tensor, p: AttentionP<Tensor>, mv: { views: number; mode: MultiViewMode } | null, opts: AttentionOptions): Tensor {
  const q = linear(x, p.toQ);
  let k = linear(context, p.toK);
  let v = linear(context, p.toV);
  if (mv) {
    k = multiViewKeys(k, mv.views, mv.mode);
    v = multiViewKeys(v, mv.views, mv.mode);
  }
  const [n, lq] = q.shape as [number, number];
  const lk = k.shape[1]!;
  const perQuery = n * p.heads * lk * 4;
  const chunk = Math.max(1, Math.min(lq, Math.floor((opts.scoreBlockBytes ?? 256 * 2 ** 20) / perQuery)));
  return linear(mergeHeads(sdpa(splitHeads(q, p.heads), splitHeads(k, p.heads), splitHeads(v, p.heads), { chunk, ...(opts.fused ? { fused: true } : {}) })), p.toOut);
}

/**
 * `TransformerMV2DModel` with one `BasicMVTransformerBlock` (GroupNorm → proj_in → block → proj_out, residual):
 * multi-view self-attention, cross-attention to the prompt of each view, GEGLU feed-forward.
 */
export function multiViewTransformer(
  x: Tensor,
  ctx: Tensor,
  p: Transformer2DP<Tensor>,
  mv: { groups: number; views: number; mode: MultiViewMode },
  opts: AttentionOptions = {},
  taps?: Taps,
  name = '',
): Tensor {
  const [, , h, w] = x.shape as [number, number, number, number];
  let t = linear(toTokens(gn(x, p.norm, mv.groups, TRANSFORMER_GN_EPS)), p.projIn);
  const b = p.block;
  const a1in = ln(t, b.norm1, LN_EPS);
  const a1 = attention(a1in, a1in, b.attn1, { views: mv.views, mode: mv.mode }, opts);
  t = add(t, a1);
  const a2in = ln(t, b.norm2, LN_EPS);
  const a2 = attention(a2in, ctx, b.attn2, null, opts);
  t = add(t, a2);
  // GEGLU: the projection's first half is the value, the second the gate.
  const [val, gate] = split(linear(ln(t, b.norm3, LN_EPS), b.ffIn), 2, -1) as [Tensor, Tensor];
  t = add(t, linear(mul(val, gelu(gate)), b.ffOut));
  if (taps) Object.assign(taps, { [`${name}.attn1.in`]: a1in, [`${name}.attn1.out`]: a1, [`${name}.attn2.in`]: a2in, [`${name}.attn2.out`]: a2 });
  return add(fromTokens(linear(t, p.projOut), h, w), x);
}

export interface UNetInputs {
  /** [N, in_channels, h, w]: noisy latent ‖ condition latent. */
  sample: Tensor;
  /** [N, block_out_channels[0]]: sinusoidal embedding of the timestep (image-conditioning.ts `timestepEmbedding`). */
  timestepEmbedding: Tensor;
  /** [N, projection_class_embeddings_input_dim]: image embedding ‖ noise-level embedding (zeros when unconditional). */
  classLabels: Tensor;
  /** [N, 77, cross_attention_dim]: per-view prompt embeddings. */
  context: Tensor;
}

/** Optional named intermediate tensors (golden-test taps), filled while building. */
export type Taps = Record<string, Tensor>;

export class MultiViewUNet {
  readonly p: UNetParams<Tensor>;

  /** `declarer` defaults to the graph; pass another to store parameters differently (e.g. fp16 + cast). */
  constructor(g: Graph, readonly config: UNetConfig, readonly attention: AttentionOptions = {}, declarer: ParamDeclarer<Tensor> = g) {
    this.p = declareUNetParams(declarer, config);
  }

  private transformer(x: Tensor, ctx: Tensor, p: Transformer2DP<Tensor>, taps: Taps | undefined, name: string): Tensor {
    const c = this.config;
    return multiViewTransformer(x, ctx, p, { groups: c.normNumGroups, views: c.numViews, mode: c.multiViewAttention }, this.attention, taps, name);
  }

  /** The predicted v (or ε) [N, out_channels, h, w]. */
  forward(inp: UNetInputs, taps?: Taps): Tensor {
    const c = this.config;
    const p = this.p;
    const G = c.normNumGroups;
    const eps = c.normEps;
    const timeEmb = linear(silu(linear(inp.timestepEmbedding, p.timeEmbedding.linear1)), p.timeEmbedding.linear2);
    const classEmb = linear(silu(linear(inp.classLabels, p.classEmbedding.linear1)), p.classEmbedding.linear2);
    const emb = add(timeEmb, classEmb);
    let h = conv(inp.sample, p.convIn);
    if (taps) Object.assign(taps, { time_embedding: timeEmb, class_embedding: classEmb, conv_in: h });

    const skips: Tensor[] = [h];
    p.down.forEach((blk, i) => {
      blk.resnets.forEach((r, j) => {
        h = resnet(h, r, emb, G, eps);
        if (blk.attentions) h = this.transformer(h, inp.context, blk.attentions[j]!, taps, `down_blocks.${i}.attentions.${j}.transformer_blocks.0`);
        skips.push(h);
      });
      if (blk.resample) {
        h = conv(h, blk.resample, { stride: 2, padding: 1 });
        skips.push(h);
      }
      if (taps) taps[`down_blocks.${i}`] = h;
    });

    h = resnet(h, p.mid.resnets[0], emb, G, eps);
    h = this.transformer(h, inp.context, p.mid.attention, taps, 'mid_block.attentions.0.transformer_blocks.0');
    h = resnet(h, p.mid.resnets[1], emb, G, eps);
    if (taps) taps.mid_block = h;

    p.up.forEach((blk, i) => {
      blk.resnets.forEach((r, j) => {
        h = resnet(concat([h, skips.pop()!], 1), r, emb, G, eps);
        if (blk.attentions) h = this.transformer(h, inp.context, blk.attentions[j]!, taps, `up_blocks.${i}.attentions.${j}.transformer_blocks.0`);
      });
      if (blk.resample) h = conv(upsampleNearest2x(h), blk.resample);
      if (taps) taps[`up_blocks.${i}`] = h;
    });

    const act = silu(gn(h, p.convNormOut, G, eps));
    if (taps) taps.conv_act = act;
    return conv(act, p.convOut);
  }
}

/** Declares the graph inputs of a UNet call for a batch of `n` items at latent size `size`. */
export function unetInputs(g: Graph, c: UNetConfig, n: number, size: number, tokens = 77): UNetInputs {
  return {
    sample: g.input('sample', [n, c.inChannels, size, size]),
    timestepEmbedding: g.input('timestep_embedding', [n, c.blockOutChannels[0]]),
    classLabels: g.input('class_labels', [n, c.classEmbedInputDim]),
    context: g.input('encoder_hidden_states', [n, tokens, c.crossAttentionDim]),
  };
}
