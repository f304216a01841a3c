/**
 * The reference's perceptual loss (spec gslrm.md §7.1, `PerceptualLoss` of `gslrm/model/utils_losses.py`):
 * VGG-19 convolutions 1–14 (of 16) with ReLU and 2×2 average pooling, inputs `img·255 − (123.68, 116.779, 103.939)`
 * in RGB order; loss = [L1(images) + L1(relu1_2)/2.6 + L1(relu2_2)/4.8 + L1(relu3_2)/3.7 + L1(relu4_2)/5.6
 * + L1(relu5_2)·10/1.5] / 255, every L1 a mean absolute error.
 *
 * It is one graph on the compute core (frozen weights as parameters, the renders as the input whose gradient is
 * returned), run one view at a time: every term is a mean over views × pixels, so the loss is the mean of the
 * per-view losses, and VGG's activations (which at 512² outweigh the rest of a step's image work) are held for one
 * view instead of all of them. Weights: the checkpoint tensors
 * `loss_calculator.perceptual_loss_module.net.conv{1..16}.{weight,bias}` (the reference saves them), conv15/16 being
 * unused by the loss.
 */
import {
  abs,
  add,
  conv2d,
  grad,
  Graph,
  mul,
  reduceMean,
  relu,
  reshape,
  Session,
  sub,
  type Tensor,
} from '../../core/index.ts';
import { readMat, type MatValue } from '../../io/matlab.ts';
import { UserError } from '../../util/errors.ts';
import type { ImageLoss } from './losses.ts';

export const VGG_PREFIX = 'loss_calculator.perceptual_loss_module.net.';
const CHANNELS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512];
const MEAN = [123.68, 116.779, 103.939];
/** Convolutions used by the loss (conv15, conv16 exist in the checkpoint but feed nothing). */
const USED = 14;

/** Names and shapes of the 32 VGG-19 tensors as the reference's state dict holds them. */
export function vggSpec(): Array<{ key: string; shape: number[] }> {
  const out: Array<{ key: string; shape: number[] }> = [];
  CHANNELS.forEach((c, i) => {
    const cin = i === 0 ? 3 : CHANNELS[i - 1]!;
    out.push({ key: `${VGG_PREFIX}conv${i + 1}.weight`, shape: [c, cin, 3, 3] });
    out.push({ key: `${VGG_PREFIX}conv${i + 1}.bias`, shape: [c] });
  });
  return out;
}

/** MatConvNet's VGG-19 layer indices of conv1…conv16 (the reference's VGG19_LAYER_INDICES). */
const MAT_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34];

/**
 * The VGG-19 tensors from MatConvNet's `imagenet-vgg-verydeep-19.mat` (the file the reference downloads), as the
 * reference loads them: `layers{idx}.weights{1}` (filters [3, 3, in, out]) permuted to [out, in, 3, 3], and
 * `weights{2}` (biases). `channels` is for tests (fixtures with fewer channels).
 */
export function vggWeightsFromMat(path: string, channels: readonly number[] = CHANNELS): Map<string, Float32Array> {
  const layers = readMat(path).get('layers');
  if (!layers || layers.kind !== 'cell')
    throw new UserError(`${path}: no "layers" cell array (is it MatConvNet's imagenet-vgg-verydeep-19.mat?)`);
  const out = new Map<string, Float32Array>();
  MAT_INDICES.forEach((li, k) => {
    const layer = layers.items[li];
    const st = layer?.kind === 'struct' ? layer.items[0] : undefined;
    const w = st?.get('weights') ?? (layer?.kind === 'struct' ? st?.get(layer.fields[2]!) : undefined);
    if (!w || w.kind !== 'cell' || w.items.length < 2)
      throw new UserError(`${path}: layer ${li} has no weights {filters, biases} (not VGG-19?)`);
    const [f, b] = w.items as [MatValue, MatValue];
    const cout = channels[k]!,
      cin = k === 0 ? 3 : channels[k - 1]!;
    if (
      f.kind !== 'numeric' ||
      f.dims.join() !== [3, 3, cin, cout].join() ||
      b.kind !== 'numeric' ||
      b.data.length !== cout
    ) {
      throw new UserError(
        `${path}: layer ${li} is not conv${k + 1} of VGG-19 (filters ${f.kind === 'numeric' ? f.dims.join('×') : f.kind}, expected 3×3×${cin}×${cout})`,
      );
    }
    const wt = new Float32Array(cout * cin * 9);
    for (let o = 0; o < cout; o++) {
      for (let i = 0; i < cin; i++) {
        for (let y = 0; y < 3; y++)
          for (let x = 0; x < 3; x++) wt[((o * cin + i) * 3 + y) * 3 + x] = f.data[y + 3 * x + 9 * i + 9 * cin * o]!;
      }
    }
    out.set(`${VGG_PREFIX}conv${k + 1}.weight`, wt);
    out.set(`${VGG_PREFIX}conv${k + 1}.bias`, Float32Array.from(b.data));
  });
  return out;
}

/** The VGG-19 tensors from a state dict, or a one-line error saying where to get them. */
export function vggWeightsFrom(model: ReadonlyMap<string, Float32Array>, source: string): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  const missing: string[] = [];
  for (const s of vggSpec()) {
    const w = model.get(s.key);
    if (!w) {
      missing.push(s.key);
      continue;
    }
    if (w.length !== s.shape.reduce((a, b) => a * b, 1))
      throw new UserError(`${source}: ${s.key} has ${w.length} values, VGG-19 needs [${s.shape.join(', ')}]`);
    out.set(s.key, w);
  }
  if (missing.length) {
    throw new UserError(
      `the perceptual loss needs VGG-19 weights (${missing.length} of 32 ${VGG_PREFIX}* tensors missing in ${source}); ` +
        "start from an official FaceLift checkpoint, which carries them, give MatConvNet's imagenet-vgg-verydeep-19.mat with --vgg19 FILE " +
        '(or $VGG19_WEIGHTS_PATH, as the reference), or set training.losses.perceptual_loss_weight=0',
    );
  }
  return out;
}

function avgPool2(x: Tensor): Tensor {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return reduceMean(reshape(x, [n, c, h / 2, 2, w / 2, 2]), [3, 5]);
}

/** VGG-19 content features relu1_2, relu2_2, relu3_2, relu4_2, relu5_2 of a normalised image batch. */
function features(g: Graph, x: Tensor): Tensor[] {
  const out: Tensor[] = [];
  const conv = (t: Tensor, i: number) =>
    relu(
      conv2d(
        t,
        g.param(`${VGG_PREFIX}conv${i}.weight`, [CHANNELS[i - 1]!, i === 1 ? 3 : CHANNELS[i - 2]!, 3, 3]),
        g.param(`${VGG_PREFIX}conv${i}.bias`, [CHANNELS[i - 1]!]),
        { padding: 1 },
      ),
    );
  let h = x;
  for (let i = 1; i <= USED; i++) {
    h = conv(h, i);
    if (i === 2 || i === 4 || i === 6 || i === 10 || i === 14) out.push(h);
    if (i === 2 || i === 4 || i === 8 || i === 12) h = avgPool2(h);
  }
  return out;
}

const l1 = (a: Tensor, b: Tensor) => reduceMean(abs(sub(a, b)), [...a.shape.keys()]);

/** Builds the loss graph for `views` images of size `size`²: outputs the loss and its gradient w.r.t. `pred`. */
export function perceptualGraph(views: number, size: number): { loss: Tensor; dPred: Tensor } {
  if (size % 16)
    throw new UserError(`the perceptual loss needs an image size divisible by 16 (VGG-19 pools 4 times), got ${size}`);
  const g = new Graph('perceptual');
  const pred = g.input('pred', [views, 3, size, size]);
  const target = g.input('target', [views, 3, size, size]);
  const mean = g.constant(Float32Array.from(MEAN), [1, 3, 1, 1]);
  const norm = (t: Tensor) => sub(mul(t, 255), mean);
  const p = norm(pred),
    t = norm(target);
  const fp = features(g, p),
    ft = features(g, t);
  const weights = [1 / 2.6, 1 / 4.8, 1 / 3.7, 1 / 5.6, 10 / 1.5];
  let loss = l1(p, t);
  fp.forEach((f, i) => {
    loss = add(loss, mul(l1(f, ft[i]!), weights[i]!));
  });
  loss = mul(loss, 1 / 255);
  const [dPred] = grad(loss, [pred]);
  return { loss, dPred: dPred! };
}

/** The perceptual loss as an ImageLoss (weights 0 while the L2 warm-up holds them at 0). */
export class PerceptualLoss implements ImageLoss {
  readonly name = 'perceptual' as const;
  private constructor(private readonly session: Session, private readonly views: number) {}

  static async create(
    vgg: Map<string, Float32Array>,
    views: number,
    size: number,
    threads?: number,
  ): Promise<PerceptualLoss> {
    const { loss, dPred } = perceptualGraph(1, size);
    const session = await Session.create({ loss, dPred }, { params: vgg, ...(threads ? { threads } : {}) });
    return new PerceptualLoss(session, views);
  }

  async lossAndGrad(
    render: Float32Array,
    target: Float32Array,
    _views: number,
    _size: number,
    dRender: Float32Array,
    weight: number,
  ): Promise<number> {
    const n = render.length / this.views;
    let total = 0;
    for (let v = 0; v < this.views; v++) {
      const view = (a: Float32Array) => a.subarray(v * n, (v + 1) * n);
      const o = await this.session.run({ pred: view(render), target: view(target) });
      const d = o.dPred!.data as Float32Array;
      for (let i = 0; i < n; i++) dRender[v * n + i] += (weight / this.views) * d[i]!;
      total += (o.loss!.data as Float32Array)[0]! / this.views;
    }
    return total;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
