/**
 * The GS-LRM network with gradients, recomputing block by block (the reference's gradient checkpointing every
 * layer): the forward keeps only each block's input; the backward runs, from the last block down, one compiled
 * "block forward + vector-Jacobian product" graph with that layer's weights swapped in, which recomputes the
 * block's activations and returns ∂L/∂x and the layer's parameter gradients. Embedding and heads work alike.
 */
import { Session, vjp, vjpInput, type HostTensor, type Tensor } from '../../core/index.ts';
import { gslrmDims, type GslrmConfig, type GslrmDims } from '../../lrm/config.ts';
import { BLOCK, BLOCK_PARAM_SUFFIXES, buildGslrmGraphs, DEFAULT_CHUNK, type GraphPart } from '../../lrm/network.ts';

export type ParamMap = Map<string, Float32Array>;

export interface GradNetworkOptions {
  views: number;
  chunk?: number;
  threads?: number;
}

export interface ForwardResult {
  /** Raw Gaussians [nGlobal + V·S², 14]: global ones first. */
  raw: Float32Array;
  /** Input of every block, then the output of the last one. */
  saved: Float32Array[];
}

const paramName = (t: Tensor): string => (t.source as { name: string }).name;

/** Official name of a graph parameter for layer `l` (block graphs use `block.*`). */
const official = (name: string, layer: number): string =>
  name.startsWith(`${BLOCK}.`) ? `transformer_layers.${layer}${name.slice(BLOCK.length)}` : name;

interface Pair {
  fwd: Session;
  bwd: Session;
  paramNames: string[];
}

export class GslrmGradNetwork {
  private constructor(
    readonly dims: GslrmDims,
    private readonly params: ParamMap,
    private readonly embed: Pair,
    private readonly block: Pair,
    private readonly heads: Pair,
  ) {}

  /** `params` holds every model tensor under its official name; updates to its buffers are seen by the next run. */
  static async create(cfg: GslrmConfig, params: ParamMap, opts: GradNetworkOptions): Promise<GslrmGradNetwork> {
    const build = () => buildGslrmGraphs(cfg, { views: opts.views, chunk: opts.chunk ?? DEFAULT_CHUNK });
    const sess = { threads: opts.threads, provider: 'cpu' as const };
    const store = (names: readonly string[], layer = 0) =>
      new Map(names.map((n) => [n, need(params, official(n, layer))]));

    const pair = async <K extends string>(fwdPart: GraphPart<K>, bwdPart: GraphPart<K>, outs: K[]): Promise<Pair> => {
      const names = bwdPart.graph.params().map((p) => p.name);
      const fwd = await Session.create(fwdPart.outputs, {
        ...sess,
        params: store(fwdPart.graph.params().map((p) => p.name)),
      });
      const wrt = [bwdPart.input, ...bwdPart.graph.paramTensors()];
      const cots = outs.map((k) => bwdPart.graph.input(`grad:${k}`, bwdPart.outputs[k].shape));
      const grads =
        outs.length === 1
          ? vjpInput(bwdPart.outputs[outs[0]!], wrt, `grad:${outs[0]}`).grads
          : vjp(
              outs.map((k) => bwdPart.outputs[k]),
              cots,
              wrt,
            );
      const o: Record<string, Tensor> = { dx: grads[0]! };
      bwdPart.graph.paramTensors().forEach((p, i) => {
        o[`grad/${paramName(p)}`] = grads[i + 1]!;
      });
      const bwd = await Session.create(o, { ...sess, params: store(names) });
      return { fwd, bwd, paramNames: names };
    };
    const a = build(),
      b = build();
    const embed = await pair(a.embed, b.embed, ['tokensLn']);
    const block = await pair(a.block, b.block, ['y']);
    const heads = await pair(a.heads, b.heads, ['rawGlobal', 'rawPixel']);
    return new GslrmGradNetwork(gslrmDims(cfg), params, embed, block, heads);
  }

  private setLayer(s: Session, names: readonly string[], layer: number): void {
    for (const n of names) s.setParam(n, need(this.params, official(n, layer)));
  }

  async forward(patches: Float32Array): Promise<ForwardResult> {
    const { nLayer, nGlobal, gaussianDim } = this.dims;
    let x = f32((await this.embed.fwd.run({ patches })).tokensLn);
    const saved = [x];
    for (let l = 0; l < nLayer; l++) {
      this.setLayer(this.block.fwd, this.block.paramNames, l);
      x = f32((await this.block.fwd.run({ x })).y);
      saved.push(x);
    }
    const o = await this.heads.fwd.run({ x });
    const rg = f32(o.rawGlobal),
      rp = f32(o.rawPixel);
    const raw = new Float32Array(rg.length + rp.length);
    raw.set(rg);
    raw.set(rp, nGlobal * gaussianDim);
    return { raw, saved };
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
    const add = (outs: Record<string, HostTensor>, layer: number) => {
      for (const [k, t] of Object.entries(outs)) {
        if (!k.startsWith('grad/')) continue;
        const name = official(k.slice(5), layer);
        if (frozen.has(name)) continue;
        let acc = grads.get(name);
        if (!acc) grads.set(name, (acc = new Float32Array(t.data.length)));
        const g = f32(t);
        for (let i = 0; i < g.length; i++) acc[i] += scale * g[i]!;
      }
    };
    const lowest = this.lowestTrainable(frozen);
    const h = await this.heads.bwd.run({
      x: fwd.saved[nLayer]!,
      'grad:rawGlobal': dRaw.subarray(0, gSplit),
      'grad:rawPixel': dRaw.subarray(gSplit),
    });
    add(h, 0);
    let dx = f32(h.dx);
    for (let l = nLayer - 1; l >= 0 && l >= lowest; l--) {
      this.setLayer(this.block.bwd, this.block.paramNames, l);
      const o = await this.block.bwd.run({ x: fwd.saved[l]!, 'grad:y': dx });
      add(o, l);
      dx = f32(o.dx);
    }
    if (lowest < 0) add(await this.embed.bwd.run({ patches, 'grad:tokensLn': dx }), 0);
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
    await Promise.all([this.embed, this.block, this.heads].flatMap((p) => [p.fwd.release(), p.bwd.release()]));
  }
}

function need(params: ParamMap, key: string): Float32Array {
  const w = params.get(key);
  if (!w) throw new Error(`GS-LRM parameters lack ${key}`);
  return w;
}

function f32(t: HostTensor | undefined): Float32Array {
  if (!t || !(t.data instanceof Float32Array)) throw new Error('GS-LRM graph returned a non-float32 output');
  return t.data;
}
