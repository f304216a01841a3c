/**
 * The SSIM loss of the reference (`SsimLoss`: 1 − pytorch_msssim.SSIM(win_size 11, win_sigma 1.5, data_range 1,
 * size_average)) as a core graph: separable Gaussian filtering as depthwise convolutions without padding ('valid',
 * as pytorch-msssim), C1 = 0.01², C2 = 0.03², the SSIM map averaged per channel and then over everything.
 * The fork's `masked_ssim_loss` sets the background (mask < 0.5) of both images to 0.5 first and clamps SSIM to
 * [0, 1]; the mask is then an input of the graph.
 */
import {
  add,
  clip,
  conv2d,
  div,
  grad,
  Graph,
  less,
  mul,
  reduceMean,
  Session,
  sub,
  where,
  type Tensor,
} from '../../core/index.ts';
import { UserError } from '../../util/errors.ts';
import type { ImageLoss } from './losses.ts';

const WIN = 11,
  SIGMA = 1.5;

function window1d(): Float32Array {
  const g = Array.from({ length: WIN }, (_, i) => Math.exp(-((i - Math.floor(WIN / 2)) ** 2) / (2 * SIGMA * SIGMA)));
  const s = g.reduce((a, b) => a + b, 0);
  return Float32Array.from(g.map((x) => x / s));
}

export function ssimLossGraph(views: number, size: number, masked: boolean): { loss: Tensor; dPred: Tensor } {
  if (size < WIN) throw new UserError(`the SSIM loss needs images of at least ${WIN}×${WIN} pixels, got ${size}`);
  const g = new Graph('ssim_loss');
  const pred = g.input('pred', [views, 3, size, size]);
  let x = pred;
  let y = g.input('target', [views, 3, size, size]);
  const w = window1d();
  const wv = g.constant(
    Float32Array.from({ length: 3 * WIN }, (_, i) => w[i % WIN]!),
    [3, 1, WIN, 1],
  );
  const wh = g.constant(
    Float32Array.from({ length: 3 * WIN }, (_, i) => w[i % WIN]!),
    [3, 1, 1, WIN],
  );
  const filt = (t: Tensor) => conv2d(conv2d(t, wv, null, { groups: 3 }), wh, null, { groups: 3 });
  if (masked) {
    const m = g.input('mask', [views, 1, size, size]);
    const bg = less(m, 0.5);
    x = where(bg, 0.5, x);
    y = where(bg, 0.5, y);
  }
  const C1 = 0.01 ** 2,
    C2 = 0.03 ** 2;
  const mu1 = filt(x),
    mu2 = filt(y);
  const mu1sq = mul(mu1, mu1),
    mu2sq = mul(mu2, mu2),
    mu12 = mul(mu1, mu2);
  const s1 = sub(filt(mul(x, x)), mu1sq),
    s2 = sub(filt(mul(y, y)), mu2sq),
    s12 = sub(filt(mul(x, y)), mu12);
  const cs = div(add(mul(s12, 2), C2), add(add(s1, s2), C2));
  const map = mul(div(add(mul(mu12, 2), C1), add(add(mu1sq, mu2sq), C1)), cs);
  let ssim = reduceMean(map, [0, 1, 2, 3]);
  if (masked) ssim = clip(ssim, 0, 1);
  const loss = sub(g.scalar(1), ssim);
  const [dPred] = grad(loss, [pred]);
  return { loss, dPred: dPred! };
}

/** The SSIM loss as an ImageLoss; `mask` ([V, S, S]) is required when built `masked`. */
export class SsimLoss implements ImageLoss {
  readonly name = 'ssim' as const;
  private constructor(
    private readonly session: Session,
    readonly masked: boolean,
  ) {}

  static async create(views: number, size: number, masked: boolean, threads?: number): Promise<SsimLoss> {
    const { loss, dPred } = ssimLossGraph(views, size, masked);
    return new SsimLoss(await Session.create({ loss, dPred }, threads ? { threads } : {}), masked);
  }


  async lossAndGrad(
    render: Float32Array,
    target: Float32Array,
    _v: number,
    _s: number,
    dRender: Float32Array,
    weight: number,
    mask?: Float32Array,
  ): Promise<number> {
    const feeds: Record<string, Float32Array> = { pred: render, target };
    if (this.masked) {
      if (!mask) throw new Error('masked SSIM loss needs the mask');
      feeds.mask = mask;
    }
    const o = await this.session.run(feeds);
    const d = o.dPred!.data as Float32Array;
    for (let i = 0; i < d.length; i++) dRender[i] += weight * d[i]!;
    return (o.loss!.data as Float32Array)[0]!;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
