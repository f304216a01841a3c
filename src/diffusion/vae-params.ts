/**
 * The parameter tree of the SD-2.1 VAE (`diffusers.AutoencoderKL`), declared in state-dict order: encoder,
 * decoder, quant_conv, post_quant_conv. The encoder registers down_blocks before mid_block, the decoder
 * up_blocks before mid_block (diffusers creates the ModuleLists first).
 */
import type { VaeConfig } from './config.ts';
import { conv2dP, linearP, normP, scope, type Conv2dP, type LinearP, type NormP, type ParamDeclarer } from './params.ts';
import { resnetP, type ResnetP } from './unet-params.ts';

/** The mid-block self-attention: its own GroupNorm, single head, biases on q/k/v/out. */
export interface VaeAttentionP<P> {
  groupNorm: NormP<P>;
  toQ: LinearP<P>;
  toK: LinearP<P>;
  toV: LinearP<P>;
  toOut: LinearP<P>;
}

export interface VaeMidP<P> {
  /** Null when `mid_block_add_attention` is false. */
  attention: VaeAttentionP<P> | null;
  resnets: [ResnetP<P>, ResnetP<P>];
}

export interface VaeLevelP<P> {
  resnets: ResnetP<P>[];
  /** Downsample (3×3 stride 2, asymmetric pad) or upsample (nearest ×2 + 3×3) conv; none on the last level. */
  resample: Conv2dP<P> | null;
}

export interface VaeEncoderP<P> {
  convIn: Conv2dP<P>;
  down: VaeLevelP<P>[];
  mid: VaeMidP<P>;
  convNormOut: NormP<P>;
  convOut: Conv2dP<P>;
}

export interface VaeDecoderP<P> {
  convIn: Conv2dP<P>;
  up: VaeLevelP<P>[];
  mid: VaeMidP<P>;
  convNormOut: NormP<P>;
  convOut: Conv2dP<P>;
}

export interface VaeParams<P> {
  encoder: VaeEncoderP<P>;
  decoder: VaeDecoderP<P>;
  quantConv: Conv2dP<P>;
  postQuantConv: Conv2dP<P>;
}

function midP<P>(d: ParamDeclarer<P>, ch: number, attention: boolean): VaeMidP<P> {
  const a = scope(d, 'attentions.0');
  return {
    attention: attention ? {
      groupNorm: normP(a, 'group_norm', ch),
      toQ: linearP(a, 'to_q', ch, ch),
      toK: linearP(a, 'to_k', ch, ch),
      toV: linearP(a, 'to_v', ch, ch),
      toOut: linearP(a, 'to_out.0', ch, ch),
    } : null,
    resnets: [resnetP(scope(d, 'resnets.0'), ch, ch, null), resnetP(scope(d, 'resnets.1'), ch, ch, null)],
  };
}

export function declareVaeEncoderParams<P>(d: ParamDeclarer<P>, c: VaeConfig): VaeEncoderP<P> {
  const ch = c.blockOutChannels;
  const n = ch.length;
  const convIn = conv2dP(d, 'conv_in', c.inChannels, ch[0], 3);
  const down = ch.map((outC, i) => {
    const b = scope(d, `down_blocks.${i}`);
    const inC = i === 0 ? ch[0] : ch[i - 1];
    return {
      resnets: Array.from({ length: c.layersPerBlock }, (_, j) => resnetP(scope(b, `resnets.${j}`), j === 0 ? inC : outC, outC, null)),
      resample: i < n - 1 ? conv2dP(b, 'downsamplers.0.conv', outC, outC, 3) : null,
    };
  });
  const mid = midP(scope(d, 'mid_block'), ch[n - 1], c.midBlockAttention);
  return {
    convIn, down, mid,
    convNormOut: normP(d, 'conv_norm_out', ch[n - 1]),
    convOut: conv2dP(d, 'conv_out', ch[n - 1], 2 * c.latentChannels, 3),
  };
}

export function declareVaeDecoderParams<P>(d: ParamDeclarer<P>, c: VaeConfig): VaeDecoderP<P> {
  const rev = [...c.blockOutChannels].reverse();
  const n = rev.length;
  const convIn = conv2dP(d, 'conv_in', c.latentChannels, rev[0], 3);
  const up = rev.map((outC, i) => {
    const b = scope(d, `up_blocks.${i}`);
    const inC = i === 0 ? rev[0] : rev[i - 1];
    return {
      resnets: Array.from({ length: c.layersPerBlock + 1 }, (_, j) => resnetP(scope(b, `resnets.${j}`), j === 0 ? inC : outC, outC, null)),
      resample: i < n - 1 ? conv2dP(b, 'upsamplers.0.conv', outC, outC, 3) : null,
    };
  });
  const mid = midP(scope(d, 'mid_block'), rev[0], c.midBlockAttention);
  return {
    convIn, up, mid,
    convNormOut: normP(d, 'conv_norm_out', rev[n - 1]),
    convOut: conv2dP(d, 'conv_out', rev[n - 1], c.outChannels, 3),
  };
}

export function declareVaeParams<P>(d: ParamDeclarer<P>, c: VaeConfig): VaeParams<P> {
  return {
    encoder: declareVaeEncoderParams(scope(d, 'encoder'), c),
    decoder: declareVaeDecoderParams(scope(d, 'decoder'), c),
    quantConv: conv2dP(d, 'quant_conv', 2 * c.latentChannels, 2 * c.latentChannels, 1),
    postQuantConv: conv2dP(d, 'post_quant_conv', c.latentChannels, c.latentChannels, 1),
  };
}
