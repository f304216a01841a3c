/**
 * The parameter tree of FaceLift's multi-view UNet (`UNetMV2DConditionModel`, spec mvdiffusion.md §2), declared
 * in diffusers' state-dict order: conv_in, time_embedding, class_embedding, down_blocks, up_blocks, mid_block,
 * conv_norm_out, conv_out. Within a block: attentions, resnets, then down/upsamplers.
 */
import type { UNetConfig } from './config.ts';
import { conv2dP, linearP, normP, scope, type Conv2dP, type LinearP, type NormP, type ParamDeclarer } from './params.ts';

/** diffusers `ResnetBlock2D` (time embedding projection present in the UNet, absent in the VAE). */
export interface ResnetP<P> {
  norm1: NormP<P>;
  conv1: Conv2dP<P>;
  timeEmbProj: LinearP<P> | null;
  norm2: NormP<P>;
  conv2: Conv2dP<P>;
  convShortcut: Conv2dP<P> | null;
}

export function resnetP<P>(d: ParamDeclarer<P>, inC: number, outC: number, tembDim: number | null): ResnetP<P> {
  return {
    norm1: normP(d, 'norm1', inC),
    conv1: conv2dP(d, 'conv1', inC, outC, 3),
    timeEmbProj: tembDim === null ? null : linearP(d, 'time_emb_proj', tembDim, outC),
    norm2: normP(d, 'norm2', outC),
    conv2: conv2dP(d, 'conv2', outC, outC, 3),
    convShortcut: inC !== outC ? conv2dP(d, 'conv_shortcut', inC, outC, 1) : null,
  };
}

/** diffusers `Attention` as used in the UNet: q/k/v without bias, `to_out.0` with bias. */
export interface AttentionP<P> {
  toQ: LinearP<P>;
  toK: LinearP<P>;
  toV: LinearP<P>;
  toOut: LinearP<P>;
  heads: number;
}

function attentionP<P>(d: ParamDeclarer<P>, dim: number, contextDim: number, heads: number): AttentionP<P> {
  return {
    toQ: linearP(d, 'to_q', dim, dim, false),
    toK: linearP(d, 'to_k', contextDim, dim, false),
    toV: linearP(d, 'to_v', contextDim, dim, false),
    toOut: linearP(d, 'to_out.0', dim, dim),
    heads,
  };
}

/** `BasicMVTransformerBlock`: multi-view self-attention, cross-attention, GEGLU feed-forward. */
export interface TransformerBlockP<P> {
  norm1: NormP<P>;
  attn1: AttentionP<P>;
  norm2: NormP<P>;
  attn2: AttentionP<P>;
  norm3: NormP<P>;
  /** GEGLU input projection C → 2·4C (value ‖ gate). */
  ffIn: LinearP<P>;
  ffOut: LinearP<P>;
}

/** `TransformerMV2DModel` with linear projections and one block. */
export interface Transformer2DP<P> {
  norm: NormP<P>;
  projIn: LinearP<P>;
  block: TransformerBlockP<P>;
  projOut: LinearP<P>;
}

export function transformer2dP<P>(d: ParamDeclarer<P>, channels: number, heads: number, contextDim: number): Transformer2DP<P> {
  const norm = normP(d, 'norm', channels);
  const projIn = linearP(d, 'proj_in', channels, channels);
  const b = scope(d, 'transformer_blocks.0');
  const block: TransformerBlockP<P> = {
    norm1: normP(b, 'norm1', channels),
    attn1: attentionP(scope(b, 'attn1'), channels, channels, heads),
    norm2: normP(b, 'norm2', channels),
    attn2: attentionP(scope(b, 'attn2'), channels, contextDim, heads),
    norm3: normP(b, 'norm3', channels),
    ffIn: linearP(b, 'ff.net.0.proj', channels, channels * 8),
    ffOut: linearP(b, 'ff.net.2', channels * 4, channels),
  };
  return { norm, projIn, block, projOut: linearP(d, 'proj_out', channels, channels) };
}

export interface UNetBlockP<P> {
  /** One transformer per resnet (cross-attention blocks), or null (DownBlock2D / UpBlock2D). */
  attentions: Transformer2DP<P>[] | null;
  resnets: ResnetP<P>[];
  /** Downsample2D (3×3 stride 2) or Upsample2D (nearest ×2 then 3×3) conv, absent on the last level. */
  resample: Conv2dP<P> | null;
}

export interface UNetMidP<P> {
  attention: Transformer2DP<P>;
  resnets: [ResnetP<P>, ResnetP<P>];
}

export interface UNetParams<P> {
  convIn: Conv2dP<P>;
  timeEmbedding: { linear1: LinearP<P>; linear2: LinearP<P> };
  classEmbedding: { linear1: LinearP<P>; linear2: LinearP<P> };
  down: UNetBlockP<P>[];
  up: UNetBlockP<P>[];
  mid: UNetMidP<P>;
  convNormOut: NormP<P>;
  convOut: Conv2dP<P>;
}

export function declareUNetParams<P>(d: ParamDeclarer<P>, c: UNetConfig): UNetParams<P> {
  const ch = c.blockOutChannels;
  const levels = ch.length;
  const temb = ch[0] * 4;
  const ctx = c.crossAttentionDim;
  const convIn = conv2dP(d, 'conv_in', c.inChannels, ch[0], 3);
  const timeEmbedding = { linear1: linearP(d, 'time_embedding.linear_1', ch[0], temb), linear2: linearP(d, 'time_embedding.linear_2', temb, temb) };
  const classEmbedding = { linear1: linearP(d, 'class_embedding.linear_1', c.classEmbedInputDim, temb), linear2: linearP(d, 'class_embedding.linear_2', temb, temb) };

  const down: UNetBlockP<P>[] = [];
  for (let i = 0; i < levels; i++) {
    const b = scope(d, `down_blocks.${i}`);
    const inC = i === 0 ? ch[0] : ch[i - 1];
    const outC = ch[i];
    const hasAttn = i < levels - 1;
    const attentions = hasAttn ? Array.from({ length: c.layersPerBlock }, (_, j) => transformer2dP(scope(b, `attentions.${j}`), outC, c.heads[i], ctx)) : null;
    const resnets = Array.from({ length: c.layersPerBlock }, (_, j) => resnetP(scope(b, `resnets.${j}`), j === 0 ? inC : outC, outC, temb));
    const resample = i < levels - 1 ? conv2dP(b, 'downsamplers.0.conv', outC, outC, 3) : null;
    down.push({ attentions, resnets, resample });
  }

  const rev = [...ch].reverse();
  const revHeads = [...c.heads].reverse();
  const up: UNetBlockP<P>[] = [];
  for (let i = 0; i < levels; i++) {
    const b = scope(d, `up_blocks.${i}`);
    const prevOut = i === 0 ? rev[0] : rev[i - 1];
    const outC = rev[i];
    const skipIn = rev[Math.min(i + 1, levels - 1)];
    const n = c.layersPerBlock + 1;
    const attentions = i > 0 ? Array.from({ length: n }, (_, j) => transformer2dP(scope(b, `attentions.${j}`), outC, revHeads[i], ctx)) : null;
    // Resnet j sees [hidden ‖ skip]; the last skip comes from the level below (or conv_in).
    const resnets = Array.from({ length: n }, (_, j) => resnetP(scope(b, `resnets.${j}`), (j === 0 ? prevOut : outC) + (j === n - 1 ? skipIn : outC), outC, temb));
    const resample = i < levels - 1 ? conv2dP(b, 'upsamplers.0.conv', outC, outC, 3) : null;
    up.push({ attentions, resnets, resample });
  }

  const m = scope(d, 'mid_block');
  const midC = ch[levels - 1];
  const mid: UNetMidP<P> = {
    attention: transformer2dP(scope(m, 'attentions.0'), midC, c.heads[levels - 1], ctx),
    resnets: [resnetP(scope(m, 'resnets.0'), midC, midC, temb), resnetP(scope(m, 'resnets.1'), midC, midC, temb)],
  };
  return {
    convIn, timeEmbedding, classEmbedding, down, up, mid,
    convNormOut: normP(d, 'conv_norm_out', ch[0]),
    convOut: conv2dP(d, 'conv_out', ch[0], c.outChannels, 3),
  };
}
