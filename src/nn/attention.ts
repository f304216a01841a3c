/**
 * Multi-head attention on [B, L, C] token tensors over the core's chunked SDPA, and a self-attention block
 * with a fused qkv projection (GS-LRM: `attn.to_qkv`, `attn.fc`, no biases).
 */
import { reshape, sdpa, split, transpose, type Graph, type SdpaOptions, type Tensor } from '../core/index.ts';
import { Linear } from './linear.ts';
import { join } from './names.ts';

/** [B, L, H·D] → [B, H, L, D]. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [b, l, c] = x.shape as [number, number, number];
  if (c % heads !== 0) throw new Error(`splitHeads: width ${c} is not divisible by ${heads} heads`);
  return transpose(reshape(x, [b, l, heads, c / heads]), [0, 2, 1, 3]);
}

/** [B, H, L, D] → [B, L, H·D]. */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, l, d] = x.shape as [number, number, number, number];
  return reshape(transpose(x, [0, 2, 1, 3]), [b, l, h * d]);
}

/** Attention of q [B,Lq,C] over k,v [B,Lk,C] with `heads` heads; returns [B,Lq,C]. */
export function multiHeadAttention(q: Tensor, k: Tensor, v: Tensor, heads: number, opts: SdpaOptions = {}): Tensor {
  return mergeHeads(sdpa(splitHeads(q, heads), splitHeads(k, heads), splitHeads(v, heads), opts));
}

export interface SelfAttentionOptions extends SdpaOptions {
  bias?: boolean;
  /** Parameter names under the prefix (default GS-LRM's: 'to_qkv', 'fc'). */
  qkvName?: string;
  outName?: string;
}

export class SelfAttention {
  readonly qkv: Linear;
  readonly out: Linear;

  constructor(g: Graph, prefix: string, readonly dim: number, readonly heads: number, private readonly opts: SelfAttentionOptions = {}) {
    const bias = { bias: opts.bias ?? false };
    this.qkv = new Linear(g, join(prefix, opts.qkvName ?? 'to_qkv'), dim, 3 * dim, bias);
    this.out = new Linear(g, join(prefix, opts.outName ?? 'fc'), dim, dim, bias);
  }

  forward(x: Tensor): Tensor {
    const [q, k, v] = split(this.qkv.forward(x), 3, -1) as [Tensor, Tensor, Tensor];
    const { bias: _b, qkvName: _q, outName: _o, ...sd } = this.opts;
    return this.out.forward(multiHeadAttention(q, k, v, this.heads, sd));
  }
}
