/**
 * Multi-head attention on [B, L, C] token tensors (the core's `multiHeadAttention`: chunked explicit SDPA or
 * onnxruntime's fused flash kernel) and a self-attention block with a fused qkv projection (GS-LRM:
 * `attn.to_qkv`, `attn.fc`, no biases).
 */
import { multiHeadAttention, split, type Graph, type SdpaOptions, type Tensor } from '../core/index.ts';
import { Linear } from './linear.ts';
import { join } from './names.ts';

export { multiHeadAttention, splitHeads, mergeHeads } from '../core/index.ts';

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
