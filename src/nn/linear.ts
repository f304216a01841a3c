/** `torch.nn.Linear`: y = x Wᵀ + b with W [out, in] (PyTorch layout, so state-dict tensors load as they are). */
import { add, matmul, mT, type Graph, type Tensor } from '../core/index.ts';
import { join } from './names.ts';

export interface LinearOptions {
  /** Default true, as in PyTorch. */
  bias?: boolean;
}

export class Linear {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(g: Graph, prefix: string, readonly inFeatures: number, readonly outFeatures: number, opts: LinearOptions = {}) {
    this.weight = g.param(join(prefix, 'weight'), [outFeatures, inFeatures]);
    this.bias = opts.bias === false ? null : g.param(join(prefix, 'bias'), [outFeatures]);
  }

  forward(x: Tensor): Tensor {
    const y = matmul(x, mT(this.weight));
    return this.bias ? add(y, this.bias) : y;
  }
}
