/**
 * LPIPS (Zhang et al., `lpips.LPIPS(net="vgg")`, version 0.1) as one core graph: inputs in [−1, 1] through the
 * scaling layer ((x − shift) / scale), torchvision's VGG-16 features cut after relu1_2, relu2_2, relu3_3, relu4_3 and
 * relu5_3 (2×2 max pooling between), each feature map unit-normalised over channels (x / (‖x‖ + 1e-10)), the squared
 * difference weighted per channel by the learned 1×1 "lin" layers, averaged over space and summed over the five
 * layers. The reference uses it as a loss (`lpips_loss_weight`, on renders·2 − 1) and as a validation metric
 * (`normalize=True`: the same on [0, 1] images).
 *
 * Weights: torchvision's `vgg16` state dict (`features.{0,2,5,…,28}.{weight,bias}`, e.g. vgg16-397923af.pth) and
 * the LPIPS package's `weights/v0.1/vgg.pth` (`lin0…lin4.model.1.weight`) — both legacy torch files, read by src/io.
 */
import {
  add, conv2d, div, grad, Graph, mul, reduceMax, reduceMean, reduceSum, relu, reshape, Session, sqrt, sub, type Tensor,
} from '../../core/index.ts';
import { TorchFile } from '../../io/torch-pt.ts';
import { UserError } from '../../util/errors.ts';
import type { ImageLoss } from './losses.ts';

/** VGG-16 convolutions per LPIPS slice, as torchvision `features` indices with (in, out) channels. */
const SLICES: Array<Array<[number, number, number]>> = [
  [[0, 3, 64], [2, 64, 64]],
  [[5, 64, 128], [7, 128, 128]],
  [[10, 128, 256], [12, 256, 256], [14, 256, 256]],
  [[17, 256, 512], [19, 512, 512], [21, 512, 512]],
  [[24, 512, 512], [26, 512, 512], [28, 512, 512]],
];
const SHIFT = [-0.03, -0.088, -0.188];
const SCALE = [0.458, 0.448, 0.45];

/** Names and shapes of the weights LPIPS needs: `vgg16.features.*` and `lin{k}.model.1.weight`. */
export function lpipsSpec(): Array<{ key: string; shape: number[] }> {
  const out: Array<{ key: string; shape: number[] }> = [];
  for (const slice of SLICES) {
    for (const [i, cin, cout] of slice) {
      out.push({ key: `features.${i}.weight`, shape: [cout, cin, 3, 3] });
      out.push({ key: `features.${i}.bias`, shape: [cout] });
    }
  }
  SLICES.forEach((s, k) => out.push({ key: `lin${k}.model.1.weight`, shape: [1, s[s.length - 1]![2], 1, 1] }));
  return out;
}

/** Reads the two weight files (any torch format); a missing or mis-shaped tensor is a one-line error. */
export async function loadLpipsWeights(vgg16Path: string, linPath: string): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [path, prefixOk] of [[vgg16Path, 'features.'], [linPath, 'lin']] as const) {
    const f = await TorchFile.open(path);
    try {
      for (const s of lpipsSpec().filter((x) => x.key.startsWith(prefixOk))) {
        // torchvision's file is a bare state dict; LPIPS's may be too, or nested under a key.
        const name = f.keys().find((k) => k === s.key || k.endsWith(`.${s.key}`));
        if (!name) throw new UserError(`${path}: no tensor ${s.key} (LPIPS needs torchvision's vgg16 and LPIPS's v0.1 vgg.pth)`);
        const info = f.info(name);
        if (info.shape.join() !== s.shape.join()) {
          throw new UserError(`${path}: ${s.key} has shape [${info.shape.join(', ')}], LPIPS needs [${s.shape.join(', ')}]`);
        }
        out.set(s.key, await f.readF32(name));
      }
    } finally {
      await f.close();
    }
  }
  return out;
}

function maxPool2(x: Tensor): Tensor {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return reduceMax(reshape(x, [n, c, h / 2, 2, w / 2, 2]), [3, 5]);
}

function features(g: Graph, x: Tensor): Tensor[] {
  const out: Tensor[] = [];
  let h = x;
  SLICES.forEach((slice, k) => {
    if (k > 0) h = maxPool2(h);
    for (const [i, cin, cout] of slice) {
      h = relu(conv2d(h, g.param(`features.${i}.weight`, [cout, cin, 3, 3]), g.param(`features.${i}.bias`, [cout]), { padding: 1 }));
    }
    out.push(h);
  });
  return out;
}

/**
 * The LPIPS graph for `views` images of `size`²: per-image distances `dist` [views] and, with `withGrad`, the
 * gradient of their mean w.r.t. `pred`. `unitRange`: inputs in [0, 1] are mapped to [−1, 1] first (`normalize=True`).
 */
export function lpipsGraph(views: number, size: number, unitRange: boolean, withGrad: boolean): Record<string, Tensor> {
  if (size % 16) throw new UserError(`LPIPS needs an image size divisible by 16 (VGG-16 pools 4 times), got ${size}`);
  const g = new Graph('lpips');
  const pred = g.input('pred', [views, 3, size, size]);
  const target = g.input('target', [views, 3, size, size]);
  const shift = g.constant(Float32Array.from(SHIFT), [1, 3, 1, 1]);
  const scale = g.constant(Float32Array.from(SCALE), [1, 3, 1, 1]);
  const prep = (t: Tensor) => div(sub(unitRange ? sub(mul(t, 2), 1) : t, shift), scale);
  const unit = (t: Tensor) => div(t, add(sqrt(reduceSum(mul(t, t), 1, true)), 1e-10));
  const fp = features(g, prep(pred)), ft = features(g, prep(target));
  let dist: Tensor | null = null;
  fp.forEach((f, k) => {
    const d = sub(unit(f), unit(ft[k]!));
    const c = f.shape[1]!;
    const lin = conv2d(mul(d, d), g.param(`lin${k}.model.1.weight`, [1, c, 1, 1]), null);
    const layer = reshape(reduceMean(lin, [1, 2, 3]), [views]);
    dist = dist ? add(dist, layer) : layer;
  });
  const out: Record<string, Tensor> = { dist: dist! };
  if (withGrad) {
    out.loss = reduceMean(dist!, [0]);
    out.dPred = grad(out.loss, [pred])[0]!;
  }
  return out;
}

/** LPIPS as a loss on renders (the reference passes renders·2 − 1, i.e. [0, 1] images mapped to [−1, 1]). */
export class LpipsLoss implements ImageLoss {
  readonly name = 'lpips' as const;
  private constructor(private readonly session: Session) {}

  static async create(weights: Map<string, Float32Array>, views: number, size: number, threads?: number): Promise<LpipsLoss> {
    const outs = lpipsGraph(views, size, true, true);
    const session = await Session.create({ loss: outs.loss!, dPred: outs.dPred! }, { params: weights, ...(threads ? { threads } : {}) });
    return new LpipsLoss(session);
  }

  async lossAndGrad(render: Float32Array, target: Float32Array, _v: number, _s: number, dRender: Float32Array, weight: number): Promise<number> {
    const o = await this.session.run({ pred: render, target });
    const d = o.dPred!.data as Float32Array;
    for (let i = 0; i < d.length; i++) dRender[i] += weight * d[i]!;
    return (o.loss!.data as Float32Array)[0]!;
  }

  async release(): Promise<void> { await this.session.release(); }
}

/** LPIPS as a metric on [0, 1] images (`normalize=True`), one distance per view. */
export class LpipsMetric {
  private constructor(private readonly session: Session) {}
  static async create(weights: Map<string, Float32Array>, views: number, size: number, threads?: number): Promise<LpipsMetric> {
    const outs = lpipsGraph(views, size, true, false);
    return new LpipsMetric(await Session.create({ dist: outs.dist! }, { params: weights, ...(threads ? { threads } : {}) }));
  }
  async distances(pred: Float32Array, target: Float32Array): Promise<Float32Array> {
    return (await this.session.run({ pred, target })).dist!.data as Float32Array;
  }
  async release(): Promise<void> { await this.session.release(); }
}
