/** `torch.nn.LayerNorm` (last axis) and `torch.nn.GroupNorm`, with PyTorch parameter names. */
import { groupNorm, layerNorm, type Graph, type Tensor } from '../core/index.ts';
import { join } from './names.ts';

export interface LayerNormOptions {
  eps?: number;
  /** Default true (PyTorch); GS-LRM uses bias=False. */
  bias?: boolean;
  /** Default true; false means no learnable weight or bias. */
  affine?: boolean;
}

export class LayerNorm {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(private readonly g: Graph, prefix: string, readonly dim: number, opts: LayerNormOptions = {}) {
    const affine = opts.affine ?? true;
    this.weight = affine ? g.param(join(prefix, 'weight'), [dim]) : null;
    this.bias = affine && opts.bias !== false ? g.param(join(prefix, 'bias'), [dim]) : null;
    this.eps = opts.eps ?? 1e-5;
  }

  forward(x: Tensor): Tensor {
    // Without affine parameters the ONNX op still needs a scale: a constant [dim] of ones.
    const w = this.weight ?? this.g.constant(new Float32Array(this.dim).fill(1), [this.dim]);
    return layerNorm(x, w, this.bias, this.eps);
  }
}

export interface GroupNormOptions {
  eps?: number;
  /** Default true (PyTorch `affine=True`). */
  affine?: boolean;
}

export class GroupNorm {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly eps: number;

  constructor(g: Graph, prefix: string, readonly groups: number, readonly channels: number, opts: GroupNormOptions = {}) {
    const affine = opts.affine ?? true;
    this.weight = affine ? g.param(join(prefix, 'weight'), [channels]) : null;
    this.bias = affine ? g.param(join(prefix, 'bias'), [channels]) : null;
    this.eps = opts.eps ?? 1e-5;
  }

  forward(x: Tensor): Tensor {
    return groupNorm(x, this.weight, this.bias, this.groups, this.eps);
  }
}
