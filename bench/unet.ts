/**
 * `npm run bench -- unet [--batch 12] [--size 64] [--fp16-weights] [--chunk-mib 256] [--fused] [--runs 1] [--no-unet]`:
 * one official-size multi-view UNet forward (870.2 M parameters; 6 views × CFG = batch 12, 64² latents) on the
 * CPU through the compute core, with random weights of the official shapes. Reports wall time (after one warm-up
 * run), achieved GFLOP/s (matmul + conv + attention FLOPs counted from the graph, multiply-adds × 2), and peak RSS,
 * next to the core's raw fp32 matmul ceiling measured in the same process and PyTorch's CPU figures
 * (research/perf-anchors.md). Also measures fp16 against fp32 matmul on this CPU, which decides whether fp16
 * weights are worth using. `--no-arena` runs the same graph with ORT's CPU arena and memory pattern off
 * (SessionOptions arena/memPattern false, as the diffusion pipeline does): with them on, ORT keeps a second copy
 * of the activations from the second run on.
 */
import type { BenchRun } from './figure.ts';
import * as C from '../src/core/index.ts';
import { OFFICIAL_UNET_CONFIG } from '../src/diffusion/official.ts';
import { timestepEmbedding } from '../src/diffusion/image-conditioning.ts';
import type { ParamDeclarer } from '../src/diffusion/params.ts';
import { MultiViewUNet, unetInputs } from '../src/diffusion/unet.ts';

const THREADS = 2;
const now = (): number => performance.now() / 1000;
const GiB = 2 ** 30;

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

/** Fast deterministic uniform fill in [−a, a) (xorshift32); values only need to be finite and varied. */
function fillUniform(out: Float32Array, a: number, seed: number): void {
  let x = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = (x / 2 ** 32 * 2 - 1) * a;
  }
}

/** FLOPs (2 × multiply-adds) of the matmul, conv and attention-block nodes the outputs depend on. */
function graphFlops(g: C.Graph): number {
  let f = 0;
  for (const n of g.nodes) {
    const ins = n.inputs;
    if (n.op.name === 'matmul') {
      const [a, b] = ins as [C.Tensor, C.Tensor];
      const batch = C.broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2)).reduce((p, d) => p * d, 1);
      f += 2 * batch * a.shape.at(-2)! * a.shape.at(-1)! * b.shape.at(-1)!;
    } else if (n.op.name === 'conv2d') {
      const [x, w] = ins as [C.Tensor, C.Tensor];
      const [, , h, wd] = x.shape as number[];
      const [o, ci, kh, kw] = w.shape as number[];
      const attrs = n.attrs as { stride: number; padding: number };
      const ho = Math.floor((h! + 2 * attrs.padding - kh!) / attrs.stride) + 1;
      const wo = Math.floor((wd! + 2 * attrs.padding - kw!) / attrs.stride) + 1;
      f += 2 * x.shape[0]! * o! * ho * wo * ci! * kh! * kw!;
    } else if (n.op.name === 'sdpaBlock') {
      const [q, k, v] = ins as [C.Tensor, C.Tensor, C.Tensor];
      const bh = q.shape[0]! * q.shape[1]!;
      f += 2 * bh * q.shape[2]! * k.shape[2]! * (q.shape[3]! + v.shape[3]!);
    }
  }
  return f;
}

async function matmulGflops(n: number, dtype: 'float32' | 'float16', runs = 5): Promise<number> {
  const g = new C.Graph();
  const y = C.matmul(g.input('a', [n, n], dtype), g.param('b', [n, n], dtype));
  const a32 = new Float32Array(n * n); fillUniform(a32, 1, 1);
  const b32 = new Float32Array(n * n); fillUniform(b32, 1, 2);
  const a = dtype === 'float16' ? C.toHalfArray(a32) : a32;
  const b = dtype === 'float16' ? C.toHalfArray(b32) : b32;
  const s = await C.Session.create({ y }, { params: new Map([['b', b]]), threads: THREADS });
  await s.run({ a });
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) { const t = now(); await s.run({ a }); ts.push(now() - t); }
  await s.release();
  ts.sort((x, y2) => x - y2);
  return (2 * n ** 3) / ts[Math.floor(runs / 2)]! / 1e9;
}

export const run: BenchRun = async function* (args) {
  const batch = flag(args, '--batch', 12);
  const size = flag(args, '--size', 64);
  const runs = flag(args, '--runs', 1);
  const fp16 = args.includes('--fp16-weights');
  const chunkMiB = flag(args, '--chunk-mib', 256);

  const ceiling = await matmulGflops(4096, 'float32');
  yield { name: 'core matmul 4096³ fp32 (ceiling)', value: ceiling, unit: 'GFLOP/s', baseline: 328, baselineName: 'PyTorch fp32 GEMM 4096³ (perf-anchors)' };
  const half = await matmulGflops(2048, 'float16', 3);
  const single = await matmulGflops(2048, 'float32', 3);
  yield { name: 'core matmul 2048³ fp16 vs fp32', value: half, unit: 'GFLOP/s', baseline: single, baselineName: 'same matmul in fp32' };
  if (args.includes('--no-unet')) return;

  // The official UNet; with --fp16-weights every parameter is stored as IEEE half and cast to fp32 at use.
  const cfg = OFFICIAL_UNET_CONFIG;
  const g = new C.Graph('unet');
  const declarer: ParamDeclarer<C.Tensor> = fp16
    ? { param: (name, shape) => C.cast(g.param(name, shape, 'float16'), 'float32') }
    : g;
  const unet = new MultiViewUNet(g, cfg, { scoreBlockBytes: chunkMiB * 2 ** 20, fused: args.includes('--fused') }, declarer);
  const out = unet.forward(unetInputs(g, cfg, batch, size));
  const flops = graphFlops(g);
  const params: C.ParamStore = new Map();
  let seed = 7;
  for (const p of g.params()) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const w = new Float32Array(n);
    const fanIn = p.shape.length > 1 ? n / p.shape[0]! : 0;
    if (fanIn > 0) fillUniform(w, 1 / Math.sqrt(fanIn), seed++);
    else if (p.name.endsWith('.weight')) w.fill(1);
    params.set(p.name, fp16 ? C.toHalfArray(w) : w);
  }
  const noArena = args.includes('--no-arena');
  const s = await C.Session.create({ out }, { params, threads: THREADS, ...(noArena ? { arena: false, memPattern: false } : {}) });
  const feeds = {
    sample: new Float32Array(batch * cfg.inChannels * size * size),
    timestep_embedding: timestepEmbedding(new Array(batch).fill(981), cfg.blockOutChannels[0]!, { flipSinToCos: true, downscaleFreqShift: 0 }),
    class_labels: new Float32Array(batch * cfg.classEmbedInputDim),
    encoder_hidden_states: new Float32Array(batch * 77 * cfg.crossAttentionDim),
  };
  fillUniform(feeds.sample, 1.7, 11);
  fillUniform(feeds.class_labels, 1, 12);
  fillUniform(feeds.encoder_hidden_states, 1.7, 13);
  let t = now();
  const first = await s.run(feeds);
  const cold = now() - t;
  if (!(first.out!.data as Float32Array).every(Number.isFinite)) throw new Error('UNet output is not finite');
  const times: number[] = [];
  for (let i = 0; i < runs; i++) { t = now(); await s.run(feeds); times.push(now() - t); }
  await s.release();
  const warm = Math.min(...times);
  const tag = `UNet b${batch} ${size}² ${fp16 ? 'fp16 weights' : 'fp32'}${args.includes('--fused') ? ' fused attn' : ''}${noArena ? ' no-arena' : ''}`;
  yield { name: `${tag}: one step (warm)`, value: warm, unit: 's', baseline: 49.8, baselineName: 'PyTorch 2.13 CPU fp32, 2 threads (perf-anchors)', note: `cold ${cold.toFixed(1)} s; ${(flops / 1e12).toFixed(3)} TFLOP` };
  yield { name: `${tag}: achieved`, value: flops / warm / 1e9, unit: 'GFLOP/s', baseline: ceiling, baselineName: 'core matmul 4096³ ceiling, same run' };
  const rss = process.resourceUsage().maxRSS * 1024 / GiB;
  yield { name: `${tag}: peak RSS`, value: rss, unit: 'GiB', baseline: 5.79, baselineName: 'PyTorch fp32 UNet b12 (perf-anchors)' };
  yield { name: `${tag}: 50 steps (extrapolated)`, value: (warm * 50) / 60, unit: 'min', higherIsBetter: false, baseline: (49.8 * 50) / 60, baselineName: 'PyTorch fp32 ×50' };
};
