/** Two-layer MLP: Linear → activation → Linear, with configurable PyTorch names (e.g. `mlp.0` / `mlp.2`). */
import { gelu, silu, relu, type Graph, type Tensor } from '../core/index.ts';
import { Linear } from './linear.ts';
import { join } from './names.ts';

export type Activation = 'gelu' | 'gelu_tanh' | 'silu' | 'relu';

export function activate(x: Tensor, act: Activation): Tensor {
  switch (act) {
    case 'gelu': return gelu(x);
    case 'gelu_tanh': return gelu(x, 'tanh');
    case 'silu': return silu(x);
    case 'relu': return relu(x);
  }
}

export interface MlpOptions {
  hidden: number;
  /** Output width (default: the input width). */
  out?: number;
  act?: Activation;
  bias?: boolean;
  /** Names of the two Linear layers under the prefix (default ['fc1', 'fc2']; nn.Sequential uses ['0', '2']). */
  names?: readonly [string, string];
}

export class Mlp {
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly act: Activation;

  constructor(g: Graph, prefix: string, dim: number, opts: MlpOptions) {
    const [n1, n2] = opts.names ?? ['fc1', 'fc2'];
    const bias = { bias: opts.bias ?? true };
    this.fc1 = new Linear(g, join(prefix, n1), dim, opts.hidden, bias);
    this.fc2 = new Linear(g, join(prefix, n2), opts.hidden, opts.out ?? dim, bias);
    this.act = opts.act ?? 'gelu';
  }

  forward(x: Tensor): Tensor {
    return this.fc2.forward(activate(this.fc1.forward(x), this.act));
  }
}
