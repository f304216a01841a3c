/**
 * The multi-view UNet with parameter gradients of the reference's loss, two ways:
 *  - whole graph (default): forward, loss and backward in one onnxruntime session;
 *  - recomputed (`gradient_checkpointing: true`): the core's `RecomputedBlock` over the UNet graph, cut at every
 *    attention call. The backward recomputes the activations segment by segment and attention by flash blocks,
 *    so what is alive at once is one segment's activations plus the values crossing the cuts — the memory
 *    bound that lets the 870M UNet train on one machine. The loss and its gradient are then computed in JS.
 * Both give the same gradients (test).
 */
import {
  Graph,
  RecomputedBlock,
  Session,
  type GradAccumulation,
  lossAndParamGrads,
  mul,
  reduceMean,
  sub,
  type Provider,
} from '../../core/index.ts';
import type { UNetConfig } from '../../diffusion/config.ts';
import { MultiViewUNet, unetInputs } from '../../diffusion/unet.ts';
import { weightedMse } from './numerics.ts';

export interface UNetFeeds {
  /** [N, in_channels, h, w]: noisy latent ‖ condition latent. */
  sample: Float32Array;
  /** [N, block_out_channels[0]]. */
  timestepEmbedding: Float32Array;
  /** [N, 2d]. */
  classLabels: Float32Array;
  /** [N, tokens, cross_attention_dim]. */
  context: Float32Array;
}

export interface UNetGradOptions {
  /** Items per call (objects × views). */
  batch: number;
  tokens: number;
  recompute: boolean;
  threads?: number;
  provider?: Provider;
  /** Queries per attention block in the recomputed backward. */
  chunk?: number;
}

export interface LossAndGrads {
  loss: number;
  /** Unweighted mean squared error (for logs). */
  mse: number;
  /**
   * ∂loss/∂θ by official name; buffers owned by the network, valid until the next call — or, when the call was
   * given a `GradAccumulation`, its map, into which scale · ∂loss/∂θ was added.
   */
  grads: ReadonlyMap<string, Float32Array>;
}

type Run = (f: UNetFeeds, target: Float32Array, weights: readonly number[], acc?: GradAccumulation)
  => Promise<LossAndGrads>;
type Loss = (f: UNetFeeds, target: Float32Array, weights: readonly number[]) => Promise<number>;

export class UNetGrad {
  private constructor(
    private readonly run: Run,
    private readonly lossOnly: Loss,
    private readonly release_: () => Promise<void>,
  ) {}

  static async create(config: UNetConfig, params: Map<string, Float32Array>, opts: UNetGradOptions): Promise<UNetGrad> {
    const n = opts.batch;
    const h = config.sampleSize;
    const g = new Graph('unet-train');
    const inputs = unetInputs(g, config, n, h, opts.tokens);
    const unet = new MultiViewUNet(g, config, opts.recompute ? { fused: true } : {});
    const pred = unet.forward(inputs);
    const feedsOf = (f: UNetFeeds) => ({
      sample: f.sample,
      timestep_embedding: f.timestepEmbedding,
      class_labels: f.classLabels,
      encoder_hidden_states: f.context,
    });
    const sessionOpts = {
      params,
      memPattern: false,
      ...(opts.threads ? { threads: opts.threads } : {}),
      provider: opts.provider ?? 'cpu',
    } as const;

    if (opts.recompute) {
      const block = await RecomputedBlock.create(
        {
          inputs: {
            sample: inputs.sample,
            timestep_embedding: inputs.timestepEmbedding,
            class_labels: inputs.classLabels,
            encoder_hidden_states: inputs.context,
          },
          outputs: { noise_pred: pred },
        },
        // Dozens of segment and attention sessions: with arenas each would keep its own peak.
        { ...sessionOpts, inputGrads: [], arena: false, ...(opts.chunk ? { chunk: opts.chunk } : {}) },
      );
      return new UNetGrad(
        async (f, target, weights, acc) => {
          const feeds = feedsOf(f);
          const out = (await block.forward(feeds)).noise_pred!;
          const { loss, grad } = weightedMse(out, target, weights);
          const mse = weightedMse(
            out,
            target,
            weights.map(() => 1),
          ).loss;
          const b = await block.backward(feeds, { noise_pred: grad }, acc ? { accumulate: acc } : {});
          return { loss, mse, grads: b.params };
        },
        async (f, target, weights) => weightedMse((await block.forward(feedsOf(f))).noise_pred!, target, weights).loss,
        () => block.release(),
      );
    }

    const target = g.input('target', pred.shape as number[]);
    const weights = g.input('weights', [n, 1, 1, 1]);
    const sq = mul(sub(pred, target), sub(pred, target));
    const perItem = reduceMean(sq, [1, 2, 3], true);
    const loss = reduceMean(mul(perItem, weights), [0, 1, 2, 3]);
    const mse = reduceMean(sq, [0, 1, 2, 3]);
    const outputs = { ...lossAndParamGrads(loss), mse };
    const session = await Session.create(outputs, sessionOpts);
    return new UNetGrad(
      async (f, tgt, w, acc) => {
        const o = await session.run({ ...feedsOf(f), target: tgt, weights: Float32Array.from(w) });
        const grads = new Map<string, Float32Array>();
        for (const [k, v] of Object.entries(o))
          if (k.startsWith('grad/')) grads.set(k.slice(5), v.data as Float32Array);
        const loss = (o.loss!.data as Float32Array)[0]!,
          mse = (o.mse!.data as Float32Array)[0]!;
        if (!acc) return { loss, mse, grads };
        for (const [name, g] of grads) {
          const a = acc.addTo.get(name);
          if (!a || a.length !== g.length) throw new Error(`UNetGrad: no gradient accumulator for "${name}"`);
          for (let i = 0; i < g.length; i++) a[i] += acc.scale * g[i]!;
        }
        return { loss, mse, grads: acc.addTo };
      },
      async (f, tgt, w) => {
        const o = await session.run({ ...feedsOf(f), target: tgt, weights: Float32Array.from(w) });
        return (o.loss!.data as Float32Array)[0]!;
      },
      () => session.release(),
    );
  }

  /**
   * The loss of predicting `target` with per-item `weights`, and its parameter gradients — returned, or added
   * (× acc.scale) into acc.addTo, which then needs a buffer for every parameter.
   */
  lossAndGrads(
    feeds: UNetFeeds,
    target: Float32Array,
    weights: readonly number[],
    acc?: GradAccumulation,
  ): Promise<LossAndGrads> {
    return this.run(feeds, target, weights, acc);
  }

  /** The loss alone (the recomputed network runs its forward only). */
  loss(feeds: UNetFeeds, target: Float32Array, weights: readonly number[]): Promise<number> {
    return this.lossOnly(feeds, target, weights);
  }

  release(): Promise<void> {
    return this.release_();
  }
}
