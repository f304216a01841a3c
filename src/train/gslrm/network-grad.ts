/**
 * The GS-LRM network with gradients, recomputing block by block (the reference's gradient checkpointing every
 * layer): the forward keeps only each block's input; the backward runs, from the last block down, the core's
 * `RecomputedBlock` with that layer's weights swapped in, which recomputes the block's activations segment by
 * segment (attention by flash blocks, nothing tokens × tokens) and returns ∂L/∂x and the layer's parameter
 * gradients. Embedding and heads work alike.
 */
import { RecomputedBlock, type BlockGrads, type Provider, type SavedActivations } from '../../core/index.ts';
import { gslrmDims, type GslrmConfig, type GslrmDims } from '../../lrm/config.ts';
import { BLOCK, BLOCK_PARAM_SUFFIXES, buildGslrmGraphs, type GraphPart } from '../../lrm/network.ts';

export type ParamMap = Map<string, Float32Array>;

export interface GradNetworkOptions {
  views: number;
  /** Queries per attention block in the backward pass (default: the core's). */
  chunk?: number;
  threads?: number;
  /** Where the network's graphs run (default 'cpu'). */
  provider?: Provider;
  /**
   * What of each layer's forward to keep for the backward instead of recomputing it there (default: nothing, only
   * the layer's input): `cuts`, the values at its attention cuts (one layer forward less per layer and pass);
   * `all`, every activation the backward reads (no forward work in the backward at all, for the most memory).
   * Memory grows with the tokens either way (the train-full bench's slice reports all three).
   */
  keepActivations?: 'cuts' | 'all';
}

export interface ForwardResult {
  /** Raw Gaussians [nGlobal + V·S², 14]: global ones first. */
  raw: Float32Array;
  /** Input of every block, then the output of the last one. */
  saved: Float32Array[];
  /** Each layer's kept activations (with `keepActivations`); the backward drops each once it is used. */
  cuts: (SavedActivations | undefined)[];
}

/** Official name of a graph parameter for layer `l` (block graphs use `block.*`). */
const official = (name: string, layer: number): string =>
  name.startsWith(`${BLOCK}.`) ? `transformer_layers.${layer}${name.slice(BLOCK.length)}` : name;

export class GslrmGradNetwork {
  private constructor(
    readonly dims: GslrmDims,
    private readonly params: ParamMap,
    private readonly embed: RecomputedBlock,
    private readonly block: RecomputedBlock,
    private readonly heads: RecomputedBlock,
    private readonly keep: 'cuts' | 'all' | undefined,
  ) {}

  /** `params` holds every model tensor under its official name; updates to its buffers are seen by the next run. */
  static async create(cfg: GslrmConfig, params: ParamMap, opts: GradNetworkOptions): Promise<GslrmGradNetwork> {
    const graphs = buildGslrmGraphs(cfg, { views: opts.views, fused: true });
    const make = <K extends string>(part: GraphPart<K>, inputGrads: string[]) => {
      const names = part.graph.params().map((p) => p.name);
      return RecomputedBlock.create(
        { inputs: { [inputName(part)]: part.input }, outputs: part.outputs },
        {
          params: new Map(names.map((n) => [n, need(params, official(n, 0))])),
          threads: opts.threads,
          provider: opts.provider ?? 'cpu',
          inputGrads,
          ...(opts.chunk ? { chunk: opts.chunk } : {}),
        },
      );
    };
    const embed = await make(graphs.embed, []);
    const block = await make(graphs.block, ['x']);
    const heads = await make(graphs.heads, ['x']);
    return new GslrmGradNetwork(gslrmDims(cfg), params, embed, block, heads, opts.keepActivations);
  }

  private setLayer(layer: number): void {
    for (const n of this.block.paramNames) this.block.setParam(n, need(this.params, official(n, layer)));
  }

  async forward(patches: Float32Array): Promise<ForwardResult> {
    const { nLayer, nGlobal, gaussianDim } = this.dims;
    let x = need(await this.embed.forward({ patches }), 'tokensLn');
    const saved = [x];
    const cuts: (SavedActivations | undefined)[] = [];
    for (let l = 0; l < nLayer; l++) {
      this.setLayer(l);
      if (this.keep) {
        const f = await this.block.forwardSaving({ x }, { residuals: this.keep === 'all' });
        x = need(f.outputs, 'y');
        cuts.push(f.saved);
      } else x = need(await this.block.forward({ x }), 'y');
      saved.push(x);
    }
    const o = await this.heads.forward({ x });
    const rg = need(o, 'rawGlobal'),
      rp = need(o, 'rawPixel');
    const raw = new Float32Array(rg.length + rp.length);
    raw.set(rg);
    raw.set(rp, nGlobal * gaussianDim);
    return { raw, saved, cuts };
  }

  /**
   * Adds `scale`·∂L/∂θ to `grads` (official names) for every parameter not in `frozen`, given ∂L/∂raw.
   * Blocks below the lowest trainable parameter are not visited.
   */
  async backward(
    patches: Float32Array,
    fwd: ForwardResult,
    dRaw: Float32Array,
    grads: ParamMap,
    frozen: ReadonlySet<string>,
    scale = 1,
  ): Promise<void> {
    const { nLayer, nGlobal, gaussianDim } = this.dims;
    const gSplit = nGlobal * gaussianDim;
    const add = (g: BlockGrads, layer: number) => {
      for (const [k, v] of g.params) {
        const name = official(k, layer);
        if (frozen.has(name)) continue;
        let acc = grads.get(name);
        if (!acc) grads.set(name, (acc = new Float32Array(v.length)));
        for (let i = 0; i < v.length; i++) acc[i] += scale * v[i]!;
      }
    };
    const lowest = this.lowestTrainable(frozen);
    const h = await this.heads.backward(
      { x: need(fwd.saved, nLayer) },
      { rawGlobal: dRaw.subarray(0, gSplit), rawPixel: dRaw.subarray(gSplit) },
    );
    add(h, 0);
    let dx = need(h.inputs, 'x');
    for (let l = nLayer - 1; l >= 0 && l >= lowest; l--) {
      this.setLayer(l);
      const kept = fwd.cuts[l];
      fwd.cuts[l] = undefined;
      const o = await this.block.backward({ x: need(fwd.saved, l) }, { y: dx }, kept ? { saved: kept } : {});
      add(o, l);
      dx = need(o.inputs, 'x');
    }
    if (lowest < 0) add(await this.embed.backward({ patches }, { tokensLn: dx }), 0);
  }

  /** −1 when the embedding trains; else the lowest layer with a trainable parameter (nLayer when only heads train). */
  private lowestTrainable(frozen: ReadonlySet<string>): number {
    if (this.embed.paramNames.some((n) => !frozen.has(n))) return -1;
    for (let l = 0; l < this.dims.nLayer; l++) {
      if (BLOCK_PARAM_SUFFIXES.some((s) => !frozen.has(`transformer_layers.${l}.${s}`))) return l;
    }
    return this.dims.nLayer;
  }

  async release(): Promise<void> {
    await Promise.all([this.embed.release(), this.block.release(), this.heads.release()]);
  }
}

function inputName<K extends string>(part: GraphPart<K>): string {
  const src = part.input.source;
  if (src.kind !== 'input') throw new Error('GS-LRM graph part without a fed input');
  return src.name;
}

function need<K extends string | number, V>(m: Map<K, V> | Record<K, V> | V[], key: K): V {
  const v = m instanceof Map ? m.get(key) : (m as Record<K, V>)[key];
  if (v === undefined) throw new Error(`GS-LRM parameters or outputs lack ${String(key)}`);
  return v;
}
