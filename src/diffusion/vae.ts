/**
 * The SD-2.1 VAE (`diffusers.AutoencoderKL`) encoder and decoder on the compute core.
 *
 * FaceLift's condition latent is the posterior **mode** (the mean) × scaling_factor (0.18215); the sampler's
 * final latents are divided by scaling_factor before decoding (spec mvdiffusion.md §4, pipeline-tiny §4.3).
 * Every GroupNorm of the VAE uses eps 1e-6.
 */
import { add, clip, conv2d, exp, mul, narrow, pad, reshape, sdpa, silu, upsampleNearest2x, type Graph, type Tensor } from '../core/index.ts';
import type { VaeConfig } from './config.ts';
import { conv, fromTokens, gn, linear, resnet, toTokens } from './layers.ts';
import type { Taps } from './unet.ts';
import { declareVaeDecoderParams, declareVaeEncoderParams, type VaeAttentionP, type VaeDecoderP, type VaeEncoderP, type VaeMidP } from './vae-params.ts';
import { conv2dP, scope } from './params.ts';

const EPS = 1e-6;

/** Single-head self-attention over the H·W positions, with its own GroupNorm and a residual connection. */
function midAttention(x: Tensor, p: VaeAttentionP<Tensor>, groups: number): Tensor {
  const [, , h, w] = x.shape as [number, number, number, number];
  const t = toTokens(gn(x, p.groupNorm, groups, EPS));
  const one = (y: Tensor) => reshape(y, [y.shape[0]!, 1, y.shape[1]!, y.shape[2]!]);
  const a = sdpa(one(linear(t, p.toQ)), one(linear(t, p.toK)), one(linear(t, p.toV)));
  const o = linear(reshape(a, [a.shape[0]!, a.shape[2]!, a.shape[3]!]), p.toOut);
  return add(fromTokens(o, h, w), x);
}

function mid(x: Tensor, p: VaeMidP<Tensor>, groups: number): Tensor {
  let h = resnet(x, p.resnets[0], null, groups, EPS);
  if (p.attention) h = midAttention(h, p.attention, groups);
  return resnet(h, p.resnets[1], null, groups, EPS);
}

export interface VaeEncoding {
  /** quant_conv output [N, 2·latent, h, w]: mean ‖ log-variance. */
  moments: Tensor;
  mean: Tensor;
  /** log-variance clamped to [−30, 20], as diffusers' DiagonalGaussianDistribution. */
  logvar: Tensor;
  std: Tensor;
}

export class VaeEncoder {
  readonly p: VaeEncoderP<Tensor>;
  readonly quantConv;

  constructor(g: Graph, readonly config: VaeConfig) {
    this.p = declareVaeEncoderParams(scope(g, 'encoder'), config);
    // quant_conv belongs to the encoding side; declared here so an encoder-only graph reads it.
    this.quantConv = conv2dP(g, 'quant_conv', 2 * config.latentChannels, 2 * config.latentChannels, 1);
  }

  /** `x` [N, 3, H, W] in [−1, 1]. */
  forward(x: Tensor, taps?: Taps): VaeEncoding {
    const G = this.config.normNumGroups;
    const p = this.p;
    let h = conv(x, p.convIn);
    if (taps) taps['encoder.conv_in'] = h;
    p.down.forEach((lvl, i) => {
      for (const r of lvl.resnets) h = resnet(h, r, null, G, EPS);
      // diffusers pads right/bottom by one, then convolves with stride 2 and no padding.
      if (lvl.resample) h = conv2d(pad(h, [0, 0, 0, 0, 0, 0, 1, 1]), lvl.resample.weight, lvl.resample.bias, { stride: 2, padding: 0 });
      if (taps) taps[`encoder.down_blocks.${i}`] = h;
    });
    h = mid(h, p.mid, G);
    if (taps) taps['encoder.mid_block'] = h;
    h = conv(silu(gn(h, p.convNormOut, G, EPS)), p.convOut);
    if (taps) taps.encoder = h;
    const moments = conv(h, this.quantConv);
    const c = this.config.latentChannels;
    const mean = narrow(moments, 1, 0, c);
    const logvar = clip(narrow(moments, 1, c, c), -30, 20);
    return { moments, mean, logvar, std: exp(mul(logvar, 0.5)) };
  }
}

export class VaeDecoder {
  readonly p: VaeDecoderP<Tensor>;
  readonly postQuantConv;

  constructor(g: Graph, readonly config: VaeConfig) {
    this.p = declareVaeDecoderParams(scope(g, 'decoder'), config);
    this.postQuantConv = conv2dP(g, 'post_quant_conv', config.latentChannels, config.latentChannels, 1);
  }

  /** `z` [N, latent, h, w] (unscaled latent) → image [N, 3, 8h, 8w], raw (≈ [−1, 1], not clamped). */
  forward(z: Tensor, taps?: Taps): Tensor {
    const G = this.config.normNumGroups;
    const p = this.p;
    let h = conv(z, this.postQuantConv);
    if (taps) taps['post_quant_conv'] = h;
    h = conv(h, p.convIn);
    h = mid(h, p.mid, G);
    if (taps) taps['decoder.mid_block'] = h;
    p.up.forEach((lvl, i) => {
      for (const r of lvl.resnets) h = resnet(h, r, null, G, EPS);
      if (lvl.resample) h = conv(upsampleNearest2x(h), lvl.resample);
      if (taps) taps[`decoder.up_blocks.${i}`] = h;
    });
    return conv(silu(gn(h, p.convNormOut, G, EPS)), p.convOut);
  }
}
