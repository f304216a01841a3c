/**
 * `npm run bench -- core [--big-only | --no-big] [--chunk N] [--head-chunk N]`: the compute core against
 * hand-built raw ONNX graphs run by onnxruntime in the same process (same thread count, same ORT build),
 * then one GS-LRM-sized self-attention layer (24,578 tokens × 1024, 16 heads), fused and explicit-chunked,
 * each in a child process with its peak RSS.
 * Timings: one warm-up, then the median of N interleaved runs (core, raw, raw, core, …), so that load from
 * other work on the shared 2-core machine hits both sides alike; each figure notes the load average.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import ort from 'onnxruntime-node';
import type { BenchRun, Figure } from './figure.ts';
import * as C from '../src/core/index.ts';
import { Linear, SelfAttention } from '../src/nn/index.ts';
import { encodeModel, type NodeSpec, type ValueInfoSpec } from '../src/core/proto.ts';
import { A } from '../src/core/attrs.ts';
import { randn, rng } from '../src/core/testing/reference.ts';

const THREADS = 2;
const now = (): number => performance.now() / 1000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A raw single-purpose ONNX model (opset 21 unless asked, no IR layer in between). */
async function rawSession(nodes: NodeSpec[], inputs: ValueInfoSpec[], output: ValueInfoSpec, initializers: { name: string; data: Float32Array; dims: number[] }[] = [], opset = 21) {
  const bytes = encodeModel({
    irVersion: opset >= 23 ? 11 : 10,
    opsets: [{ domain: '', version: opset }, { domain: 'com.microsoft', version: 1 }],
    graphName: 'raw',
    nodes,
    initializers: initializers.map((i) => ({ name: i.name, dtype: 'float32' as const, dims: i.dims, raw: new Uint8Array(i.data.buffer) })),
    inputs,
    outputs: [output],
  });
  // Same session settings as the core's defaults (threads, no spin-waiting), so only the graphs differ.
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: THREADS, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } });
}

/** Median times of interleaved runs; the order alternates each round so neither side always runs second. */
async function compare(runs: number, core: () => Promise<unknown>, raw: () => Promise<unknown>): Promise<{ core: number; raw: number }> {
  await core(); await raw();
  const tc: number[] = [], tr: number[] = [];
  const time = async (f: () => Promise<unknown>, into: number[]): Promise<void> => {
    const t = now();
    await f();
    into.push(now() - t);
  };
  for (let i = 0; i < runs; i++) {
    if (i % 2) { await time(core, tc); await time(raw, tr); } else { await time(raw, tr); await time(core, tc); }
  }
  return { core: median(tc), raw: median(tr) };
}

const f32 = (dims: number[]): ValueInfoSpec => ({ name: '', dtype: 'float32', dims });
const vi = (name: string, dims: number[]): ValueInfoSpec => ({ ...f32(dims), name });
const node = (opType: string, inputs: string[], outputs: string[], attrs: NodeSpec['attrs'] = {}, domain?: string): NodeSpec =>
  ({ opType, name: outputs[0]!, inputs, outputs, attrs, ...(domain ? { domain } : {}) });

async function* matmulBench(): AsyncGenerator<Figure> {
  const n = 1024, r = rng(1);
  const a = randn(r, n * n), b = randn(r, n * n);
  const g = new C.Graph();
  const y = C.matmul(g.input('a', [n, n]), g.param('b', [n, n]));
  const s = await C.Session.create({ y }, { params: new Map([['b', b]]), threads: THREADS });
  const raw = await rawSession([node('MatMul', ['a', 'b'], ['y'])], [vi('a', [n, n]), vi('b', [n, n])], vi('y', [n, n]));
  const ta = new ort.Tensor('float32', a, [n, n]), tb = new ort.Tensor('float32', b, [n, n]);
  const t = await compare(31, () => s.run({ a }), () => raw.run({ a: ta, b: tb }));
  const flop = 2 * n ** 3 / 1e9;
  yield { name: 'matmul 1024³', value: flop / t.core, unit: 'GFLOP/s', baseline: flop / t.raw, baselineName: 'raw ORT graph' };
}

/** nn.Linear's x·Wᵀ with W [out,in] as a parameter (PyTorch layout) vs a raw MatMul on a pre-transposed W. */
async function* linearBench(): AsyncGenerator<Figure> {
  const L = 4096, d = 1024, r = rng(5);
  const x = randn(r, L * d), w = randn(r, d * d, 0.03);
  const g = new C.Graph();
  const y = new Linear(g, 'fc', d, d, { bias: false }).forward(g.input('x', [1, L, d]));
  const s = await C.Session.create({ y }, { params: new Map([['fc.weight', w]]), threads: THREADS });
  const wt = new Float32Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) wt[j * d + i] = w[i * d + j]!;
  const raw = await rawSession([node('MatMul', ['x', 'wt'], ['y'])], [vi('x', [1, L, d]), vi('wt', [d, d])], vi('y', [1, L, d]));
  const tx = new ort.Tensor('float32', x, [1, L, d]), tw = new ort.Tensor('float32', wt, [d, d]);
  const t = await compare(21, () => s.run({ x }), () => raw.run({ x: tx, wt: tw }));
  const flop = 2 * L * d * d / 1e9;
  yield { name: 'nn.Linear [1,4096,1024]→1024', value: flop / t.core, unit: 'GFLOP/s', baseline: flop / t.raw, baselineName: 'raw MatMul, pre-transposed W' };
}

async function* convBench(): AsyncGenerator<Figure> {
  const r = rng(2);
  const x = randn(r, 64 * 128 * 128), w = randn(r, 64 * 64 * 9, 0.05);
  const g = new C.Graph();
  const y = C.conv2d(g.input('x', [1, 64, 128, 128]), g.param('w', [64, 64, 3, 3]), null, { padding: 1 });
  const s = await C.Session.create({ y }, { params: new Map([['w', w]]), threads: THREADS });
  const raw = await rawSession([node('Conv', ['x', 'w'], ['y'], { kernel_shape: A.is([3, 3]), pads: A.is([1, 1, 1, 1]) })],
    [vi('x', [1, 64, 128, 128]), vi('w', [64, 64, 3, 3])], vi('y', [1, 64, 128, 128]));
  const tx = new ort.Tensor('float32', x, [1, 64, 128, 128]), tw = new ort.Tensor('float32', w, [64, 64, 3, 3]);
  const t = await compare(31, () => s.run({ x }), () => raw.run({ x: tx, w: tw }));
  const flop = 2 * 64 * 64 * 9 * 128 * 128 / 1e9;
  yield { name: 'conv 3×3 [1,64,128,128]→64', value: flop / t.core, unit: 'GFLOP/s', baseline: flop / t.raw, baselineName: 'raw ORT graph' };
}

async function* attentionBench(): AsyncGenerator<Figure> {
  const L = 4096, D = 64, r = rng(3);
  const shape = [1, 1, L, D];
  const q = randn(r, L * D), k = randn(r, L * D), v = randn(r, L * D);
  const flop = 4 * L * L * D / 1e9;
  const feeds = { q: new ort.Tensor('float32', q, shape), k: new ort.Tensor('float32', k, shape), v: new ort.Tensor('float32', v, shape) };
  const ins = ['q', 'k', 'v'].map((n) => vi(n, shape));
  const raw = await rawSession([
    node('Transpose', ['k'], ['kt'], { perm: A.is([0, 1, 3, 2]) }),
    node('MatMul', ['q', 'kt'], ['s']),
    node('Mul', ['s', 'scale'], ['ss']),
    node('Softmax', ['ss'], ['p'], { axis: A.i(-1) }),
    node('MatMul', ['p', 'v'], ['y']),
  ], ins, vi('y', shape), [{ name: 'scale', data: Float32Array.of(1 / 8), dims: [] }]);
  const runRaw = () => raw.run(feeds);

  const build = (opts: C.SdpaOptions) => {
    const g = new C.Graph();
    return C.sdpa(g.input('q', shape), g.input('k', shape), g.input('v', shape), opts);
  };
  const full = await C.Session.create({ y: build({}) }, { threads: THREADS });
  const t = await compare(21, () => full.run({ q, k, v }), runRaw);
  yield { name: 'attention 4096×64 (1 head)', value: flop / t.core, unit: 'GFLOP/s', baseline: flop / t.raw, baselineName: 'raw ORT graph' };
  const chunked = await C.Session.create({ y: build({ chunk: 1024 }) }, { threads: THREADS });
  const tc = await compare(21, () => chunked.run({ q, k, v }), runRaw);
  yield { name: 'attention 4096×64, chunk 1024', value: flop / tc.core, unit: 'GFLOP/s', baseline: flop / tc.raw, baselineName: 'raw ORT graph (unchunked)' };

  const fused = await C.Session.create({ y: build({ fused: true }) }, { threads: THREADS });
  const tfc = await compare(21, () => fused.run({ q, k, v }), runRaw);
  yield { name: 'attention 4096×64, fused (ORT MHA kernel)', value: flop / tfc.core, unit: 'GFLOP/s', baseline: flop / tfc.raw, baselineName: 'raw ORT graph (explicit)' };

  // ONNX's own opset-23 Attention, for the record (the core does not use it: slower than the explicit graph here).
  const fused23 = await rawSession([node('Attention', ['q', 'k', 'v'], ['y'])], ins, vi('y', shape), [], 23);
  const tf = await compare(21, () => fused23.run(feeds), runRaw);
  yield { name: 'ONNX-23 Attention op 4096×64', value: flop / tf.core, unit: 'GFLOP/s', baseline: flop / tf.raw, baselineName: 'raw explicit graph' };
}

/**
 * One GS-LRM self-attention layer: to_qkv, 16-head SDPA over 24,578 tokens, fc (no biases). Runs in a child
 * process so that its peak RSS is its own; prints one JSON line.
 */
export async function bigAttentionChild(mode: 'fused' | 'explicit', chunk: number, headChunk: number): Promise<void> {
  const L = 24578, d = 1024, heads = 16, r = rng(4);
  const g = new C.Graph();
  const x = g.input('x', [1, L, d]);
  const y = new SelfAttention(g, 'attn', d, heads, mode === 'fused' ? { fused: true } : { chunk, headChunk }).forward(x);
  const params: C.ParamStore = new Map(g.params().map((p) => [p.name, randn(r, p.shape.reduce((a, b) => a * b, 1), 0.02)]));
  const xd = randn(r, L * d);
  const rssBefore = process.resourceUsage().maxRSS / 2 ** 20;
  const t0 = now();
  const s = await C.Session.create({ y }, { params, threads: THREADS });
  const t1 = now();
  const cpu0 = process.cpuUsage();
  const out = await s.run({ x: xd });
  const cpu = process.cpuUsage(cpu0);
  const t2 = now();
  if (!(out.y!.data as Float32Array).every(Number.isFinite)) throw new Error('non-finite output');
  console.log(JSON.stringify({ create: t1 - t0, run: t2 - t1, cpu: (cpu.user + cpu.system) / 1e6, rssBefore, peak: process.resourceUsage().maxRSS / 2 ** 20 }));
}

async function* bigAttention(mode: 'fused' | 'explicit', chunk: number, headChunk: number): AsyncGenerator<Figure> {
  const code = `import('./bench/core.ts').then((m) => m.bigAttentionChild(${JSON.stringify(mode)}, ${chunk}, ${headChunk}))`;
  const res = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], { cwd: new URL('..', import.meta.url).pathname, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`big attention child failed: ${res.stderr}`);
  const m = JSON.parse(res.stdout.trim().split('\n').at(-1)!) as { create: number; run: number; cpu: number; rssBefore: number; peak: number };
  const L = 24578, d = 1024;
  const flop = (2 * L * 4 * d * d + 4 * L * L * d) / 1e9;
  const how = mode === 'fused' ? 'ORT fused MultiHeadAttention' : `explicit, chunks of ${chunk} queries × ${headChunk} heads`;
  // Baseline: PyTorch 2.13 CPU, a whole GS-LRM layer (attention + MLP), 2 threads (perf-anchors.md: 197 GFLOP/s fp32).
  yield {
    name: `GS-LRM attention layer 24,578×1024, ${mode}`, value: flop / m.run, unit: 'GFLOP/s', baseline: 197,
    baselineName: 'PyTorch CPU GS-LRM layer (perf-anchors)',
    // CPU seconds (threads do not spin) show the work itself when the shared machine's load stretches the wall time.
    note: `${how}; run ${m.run.toFixed(1)} s wall, ${m.cpu.toFixed(1)} CPU-s (${(flop / m.cpu).toFixed(0)} GFLOP per CPU-s) + session ${m.create.toFixed(1)} s`,
  };
  yield { name: `GS-LRM attention layer peak RSS, ${mode}`, value: m.peak, unit: 'GiB', note: `process maxRSS; ${m.rssBefore.toFixed(2)} GiB before building the session` };
}

export const run: BenchRun = async function* (args) {
  // The machine is shared: each figure's note carries the 1-minute load average when it was taken.
  for await (const f of figures(args)) yield { ...f, note: [f.note, `load ${os.loadavg()[0]!.toFixed(1)}`].filter(Boolean).join('; ') };
};

async function* figures(args: string[]): AsyncGenerator<Figure> {
  const opt = (name: string, def: number): number => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : def;
  };
  if (!args.includes('--big-only')) {
    yield* matmulBench();
    yield* linearBench();
    yield* convBench();
    yield* attentionBench();
  }
  if (!args.includes('--no-big')) {
    yield* bigAttention('fused', 0, 0);
    yield* bigAttention('explicit', opt('--chunk', 2048), opt('--head-chunk', 4));
  }
}
