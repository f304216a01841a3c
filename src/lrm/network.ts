/**
 * The GS-LRM transformer (spec gslrm.md §3) on the compute core: patch embedding, 2 learned global Gaussian
 * tokens, input LayerNorm, n pre-LN bias-free blocks with full (chunked) attention over every token of every view,
 * and the two Gaussian heads.
 *
 * It is compiled as three graphs — embed, one transformer block, heads — and the block graph is run once per
 * layer with that layer's weights swapped in: parameters are graph inputs, so one compiled block serves all 24
 * layers, peak memory is one block's working set, and progress can be reported per layer.
 */
import { add, concat, Graph, narrow, reshape, Session, split, type HostTensor, type Provider, type SdpaOptions, type Tensor } from '../core/index.ts';
import { LayerNorm, Linear, Mlp, multiHeadAttention } from '../nn/index.ts';
import { gslrmDims, type GslrmConfig, type GslrmDims } from './config.ts';
import type { GslrmWeights } from './weights.ts';

export interface NetworkOptions {
  /** Number of input views (the sequence length is 2 + views·(H/8)·(W/8)). */
  views: number;
  /** Queries per attention chunk (default DEFAULT_CHUNK; 16 heads × 256 × 24,578 fp32 scores are 0.4 GB). */
  chunk?: number;
  /** Heads per attention chunk (default: all). */
  headChunk?: number;
  /** Run attention with onnxruntime's fused (flash) MultiHeadAttention kernel instead of explicit chunks. */
  fused?: boolean;
  /** onnxruntime intra-op threads (default: ORT's choice). */
  threads?: number;
  /** Execution provider (default 'auto': CUDA when onnxruntime-node's CUDA library is installed, else CPU). */
  provider?: Provider | 'auto';
  /** Linear layers in int8 (weights quantized per output channel when the sessions are made). */
  int8?: boolean;
}

export interface ForwardHooks {
  /** Called after the embedding and after every block with the residual stream [1, L, d]. */
  onStage?: (stage: ForwardStage) => void;
}

export type ForwardStage =
  | { kind: 'embed'; patchTokens: Float32Array; tokensIn: Float32Array; tokensLn: Float32Array }
  | { kind: 'layer'; layer: number; layers: number; output: Float32Array }
  | { kind: 'heads'; rawGlobal: Float32Array; rawPixel: Float32Array };

export const BLOCK = 'block';
/** Queries per attention chunk; measured on the 2-core CPU with bench/lrm.ts (see the README). */
export const DEFAULT_CHUNK = 256;

/** A compiled GS-LRM for a fixed number of views at the config's image size. */
export class GslrmNetwork {
  private constructor(
    readonly dims: GslrmDims,
    readonly views: number,
    private readonly weights: GslrmWeights,
    private readonly embed: Session,
    private readonly block: Session,
    private readonly heads: Session,
  ) {}

  /** Sequence length: global tokens + image tokens of all views. */
  get tokens(): number {
    return this.dims.nGlobal + this.views * this.dims.tokensPerView;
  }

  static async create(cfg: GslrmConfig, weights: GslrmWeights, opts: NetworkOptions): Promise<GslrmNetwork> {
    const graphs = buildGslrmGraphs(cfg, opts);
    const sess = { threads: opts.threads, provider: opts.provider ?? 'auto', int8: opts.int8 ?? false };
    const embed = await Session.create(graphs.embed.outputs, { ...sess, params: pick(weights, graphs.embed.graph) });
    const block = await Session.create(graphs.block.outputs, { ...sess, params: blockParams(weights, graphs.block.graph, 0) });
    const heads = await Session.create(graphs.heads.outputs, { ...sess, params: pick(weights, graphs.heads.graph) });
    return new GslrmNetwork(gslrmDims(cfg), opts.views, weights, embed, block, heads);
  }

  /**
   * Runs the network on patchified posed input tokens [1, V·T, 576] and returns the raw Gaussians
   * [nGlobal + V·T·64, 14] (global first, then pixel Gaussians in token order).
   */
  async forward(patches: Float32Array, hooks: ForwardHooks = {}): Promise<Float32Array> {
    const { nLayer, nGlobal, gaussianDim } = this.dims;
    const e = await this.embed.run({ patches });
    hooks.onStage?.({ kind: 'embed', patchTokens: f32(e.patchTokens), tokensIn: f32(e.tokensIn), tokensLn: f32(e.tokensLn) });
    let x = f32(e.tokensLn);
    for (let l = 0; l < nLayer; l++) {
      for (const [name, data] of blockParams(this.weights, null, l)) this.block.setParam(name, data);
      x = f32((await this.block.run({ x })).y);
      hooks.onStage?.({ kind: 'layer', layer: l, layers: nLayer, output: x });
    }
    const o = await this.heads.run({ x });
    const rawGlobal = f32(o.rawGlobal), rawPixel = f32(o.rawPixel);
    hooks.onStage?.({ kind: 'heads', rawGlobal, rawPixel });
    const raw = new Float32Array(rawGlobal.length + rawPixel.length);
    raw.set(rawGlobal);
    raw.set(rawPixel, nGlobal * gaussianDim);
    return raw;
  }

  async release(): Promise<void> {
    await Promise.all([this.embed.release(), this.block.release(), this.heads.release()]);
  }
}

export interface GraphPart<K extends string> {
  graph: Graph;
  /** The graph's one fed input (patch tokens, or the residual stream). */
  input: Tensor;
  outputs: Record<K, Tensor>;
}

export interface GslrmGraphs {
  embed: GraphPart<'patchTokens' | 'tokensIn' | 'tokensLn'>;
  /** One transformer block; its parameters are named `block.*` (= `transformer_layers.<l>.*`). */
  block: GraphPart<'y'>;
  heads: GraphPart<'rawGlobal' | 'rawPixel'>;
}

/** Builds the three graphs (no weights, no runtime): shapes and parameter declarations only. */
export function buildGslrmGraphs(cfg: GslrmConfig, opts: Omit<NetworkOptions, 'threads' | 'provider'>): GslrmGraphs {
  const dims = gslrmDims(cfg);
  const { d, nGlobal, patchDim, heads, gaussianDim, patch } = dims;
  const nImg = opts.views * dims.tokensPerView;
  const L = nGlobal + nImg;

  // 1. Patch tokens → Linear(576 → d) → [global tokens ; patch tokens] → LayerNorm.
  const ge = new Graph('gslrm_embed');
  const patches = ge.input('patches', [1, nImg, patchDim]);
  const patchTokens = new Linear(ge, 'patch_embedder.1', patchDim, d, { bias: false }).forward(patches);
  const globalTokens = reshape(ge.param('gaussian_position_embeddings', [nGlobal, d]), [1, nGlobal, d]);
  const tokensIn = concat([globalTokens, patchTokens], 1);
  const tokensLn = new LayerNorm(ge, 'input_layer_norm', d, { bias: false }).forward(tokensIn);

  // 2. One pre-LN block: x += fc(attn(LN1 x)); x += W2·GELU_erf(W1·LN2 x). No biases, no positional encoding.
  const gb = new Graph('gslrm_block');
  const x = gb.input('x', [1, L, d]);
  const norm1 = new LayerNorm(gb, `${BLOCK}.norm1`, d, { bias: false });
  // to_qkv output channels are [q | k | v], each head-major (h·d_head + i), as the official split(d) + rearrange.
  const toQkv = new Linear(gb, `${BLOCK}.attn.to_qkv`, d, 3 * d, { bias: false });
  const fc = new Linear(gb, `${BLOCK}.attn.fc`, d, d, { bias: false });
  const sdpaOpts: SdpaOptions = { chunk: opts.chunk ?? DEFAULT_CHUNK, ...(opts.headChunk ? { headChunk: opts.headChunk } : {}), ...(opts.fused ? { fused: true } : {}) };
  const attn = (t: Tensor) => {
    const [q, k, v] = split(toQkv.forward(t), 3, -1) as [Tensor, Tensor, Tensor];
    return fc.forward(multiHeadAttention(q, k, v, heads, sdpaOpts));
  };
  const norm2 = new LayerNorm(gb, `${BLOCK}.norm2`, d, { bias: false });
  const mlp = new Mlp(gb, `${BLOCK}.mlp.mlp`, d, { hidden: 4 * d, act: 'gelu', bias: false, names: ['0', '2'] });
  const h = add(x, attn(norm1.forward(x)));
  const y = add(h, mlp.forward(norm2.forward(h)));

  // 3. Heads: LN → Linear(d → 14) on the global tokens; LN → Linear(d → 64·14) on every image token, whose
  //    output channel (py·8 + px)·14 + k is parameter k of that pixel's Gaussian, so a reshape gives Gaussian order.
  const gh = new Graph('gslrm_heads');
  const xo = gh.input('x', [1, L, d]);
  const rawGlobal = headOf(gh, 'gaussian_upsampler.layernorm', 'gaussian_upsampler.linear', narrow(xo, 1, 0, nGlobal), d, gaussianDim);
  const pix = headOf(gh, 'pixel_gaussian_decoder.0', 'pixel_gaussian_decoder.1', narrow(xo, 1, nGlobal, nImg), d, patch * patch * gaussianDim);
  const rawPixel = reshape(pix, [1, nImg * patch * patch, gaussianDim]);

  return {
    embed: { graph: ge, input: patches, outputs: { patchTokens, tokensIn, tokensLn } },
    block: { graph: gb, input: x, outputs: { y } },
    heads: { graph: gh, input: xo, outputs: { rawGlobal, rawPixel } },
  };
}

function headOf(g: Graph, lnName: string, linName: string, x: Tensor, d: number, out: number): Tensor {
  return new Linear(g, linName, d, out, { bias: false }).forward(new LayerNorm(g, lnName, d, { bias: false }).forward(x));
}

/** The weights a graph declares, by name. */
function pick(weights: GslrmWeights, g: Graph): Map<string, Float32Array> {
  return new Map(g.params().map((p) => [p.name, need(weights, p.name)]));
}

/** Layer l's weights under the block graph's parameter names (`block.*` ← `transformer_layers.l.*`). */
export function blockParams(weights: GslrmWeights, g: Graph | null, layer: number): Map<string, Float32Array> {
  const names = g ? g.params().map((p) => p.name) : [...BLOCK_PARAM_SUFFIXES].map((s) => `${BLOCK}.${s}`);
  return new Map(names.map((n) => [n, need(weights, `transformer_layers.${layer}${n.slice(BLOCK.length)}`)]));
}

export const BLOCK_PARAM_SUFFIXES = ['norm1.weight', 'attn.to_qkv.weight', 'attn.fc.weight', 'norm2.weight', 'mlp.mlp.0.weight', 'mlp.mlp.2.weight'];

function need(weights: GslrmWeights, key: string): Float32Array {
  const w = weights.get(key);
  if (!w) throw new Error(`GS-LRM weights lack ${key} (load them with loadGslrmWeights, which checks every key)`);
  return w;
}

function f32(t: HostTensor | undefined): Float32Array {
  if (!t || !(t.data instanceof Float32Array)) throw new Error('GS-LRM graph returned a non-float32 output');
  return t.data;
}
