/** `torch.nn.Conv2d` (square kernel, equal stride/padding on both axes), weight [out, in/groups, k, k]. */
import { cast, conv2d, type DType, type Graph, type Tensor } from '../core/index.ts';
import { join } from './names.ts';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  groups?: number;
  /** Default true, as in PyTorch. */
  bias?: boolean;
  /** Storage dtype of the parameters (default float32); cast to the input's dtype in forward. */
  dtype?: DType;
}

export class Conv2d {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly stride: number;
  readonly padding: number;
  readonly groups: number;

  constructor(g: Graph, prefix: string, readonly inChannels: number, readonly outChannels: number, readonly kernel: number, opts: Conv2dOptions = {}) {
    this.stride = opts.stride ?? 1;
    this.padding = opts.padding ?? 0;
    this.groups = opts.groups ?? 1;
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new Error(`Conv2d ${prefix}: channels ${inChannels}→${outChannels} are not divisible by groups=${this.groups}`);
    }
    this.weight = g.param(join(prefix, 'weight'), [outChannels, inChannels / this.groups, kernel, kernel], opts.dtype);
    this.bias = opts.bias === false ? null : g.param(join(prefix, 'bias'), [outChannels], opts.dtype);
  }

  forward(x: Tensor): Tensor {
    const b = this.bias && cast(this.bias, x.dtype);
    return conv2d(x, cast(this.weight, x.dtype), b, { stride: this.stride, padding: this.padding, groups: this.groups });
  }
}
