/** `torch.nn.Linear`: y = x Wᵀ + b with W [out, in] (PyTorch layout, so state-dict tensors load as they are). */
import { cast, linear, type DType, type Graph, type Tensor } from '../core/index.ts';
import { join } from './names.ts';

export interface LinearOptions {
  /** Default true, as in PyTorch. */
  bias?: boolean;
  /** Storage dtype of the parameters (default float32); float16 halves memory and is cast to the input's dtype. */
  dtype?: DType;
}

export class Linear {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(g: Graph, prefix: string, readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    this.weight = g.param(join(prefix, 'weight'), [outFeatures, inFeatures], opts.dtype);
    this.bias = opts.bias === false ? null : g.param(join(prefix, 'bias'), [outFeatures], opts.dtype);
  }

  forward(x: Tensor): Tensor {
    return linear(x, cast(this.weight, x.dtype), this.bias && cast(this.bias, x.dtype));
  }
}
