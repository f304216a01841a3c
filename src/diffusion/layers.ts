/**
 * Forward functions of the standard layers over the compute core, taking the parameter groups of params.ts
 * (so the tensors a model reads are exactly the ones its declaration lists).
 */
import {
  add, conv2d, groupNorm, layerNorm, linear as coreLinear, reshape, silu, transpose, type Tensor,
} from '../core/index.ts';
import type { Conv2dP, LinearP, NormP } from './params.ts';
import type { ResnetP } from './unet-params.ts';

/** y = x Wᵀ + b over the last axis (the core's linear: int8 sessions quantize it). */
export function linear(x: Tensor, p: LinearP<Tensor>): Tensor {
  return coreLinear(x, p.weight, p.bias ?? null);
}

export function conv(x: Tensor, p: Conv2dP<Tensor>, opts: { stride?: number; padding?: number } = {}): Tensor {
  return conv2d(x, p.weight, p.bias, { stride: opts.stride ?? 1, padding: opts.padding ?? (p.kernel - 1) / 2 });
}

export function gn(x: Tensor, p: NormP<Tensor>, groups: number, eps: number): Tensor {
  return groupNorm(x, p.weight, p.bias, groups, eps);
}

export function ln(x: Tensor, p: NormP<Tensor>, eps: number): Tensor {
  return layerNorm(x, p.weight, p.bias, eps);
}

/**
 * diffusers `ResnetBlock2D` ("default" time-scale-shift, output scale 1):
 * h = conv1(SiLU(GN(x))) (+ time_emb_proj(SiLU(temb)) per channel); h = conv2(SiLU(GN(h))); out = shortcut(x) + h.
 */
export function resnet(x: Tensor, p: ResnetP<Tensor>, temb: Tensor | null, groups: number, eps: number): Tensor {
  let h = conv(silu(gn(x, p.norm1, groups, eps)), p.conv1);
  if (p.timeEmbProj) {
    if (!temb) throw new Error('resnet: this block needs a time embedding');
    const t = linear(silu(temb), p.timeEmbProj);
    h = add(h, reshape(t, [t.shape[0]!, t.shape[1]!, 1, 1]));
  }
  h = conv(silu(gn(h, p.norm2, groups, eps)), p.conv2);
  return add(p.convShortcut ? conv(x, p.convShortcut) : x, h);
}

/** [N, C, H, W] → [N, H·W, C] (the token layout of the attention blocks). */
export function toTokens(x: Tensor): Tensor {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return reshape(transpose(x, [0, 2, 3, 1]), [n, h * w, c]);
}

/** [N, H·W, C] → [N, C, H, W]. */
export function fromTokens(x: Tensor, h: number, w: number): Tensor {
  const [n, , c] = x.shape as [number, number, number];
  return transpose(reshape(x, [n, h, w, c]), [0, 3, 1, 2]);
}
