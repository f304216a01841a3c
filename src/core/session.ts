/**
 * Execution through onnxruntime-node. A Session owns one compiled graph; parameters come from a ParamStore
 * and are wrapped as ORT tensors once (ORT reads the typed arrays in place, so optimizers may update the
 * buffers between runs without re-creating anything).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import { GraphError, sizeOf, type DType, type Shape, type Tensor } from './graph.ts';
import { lower, type GraphInputInfo, type LoweredModel } from './lower.ts';
import { quantizedOf } from './quantize.ts';

export type HostData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array | Int8Array;
type InfoDType = DType | 'int8';
export interface HostTensor {
  readonly data: HostData;
  readonly shape: Shape;
  readonly dtype: DType;
}
/** Parameter values by name: Float32Array for float32 parameters, Uint16Array (IEEE half bits) for float16. */
export type ParamStore = Map<string, Float32Array | Uint16Array>;
export type Provider = 'cpu' | 'cuda';

export interface SessionOptions {
  /** Values of the parameters the graph reads. */
  params?: ParamStore;
  /** intra-op threads (default: ORT's choice, i.e. the number of cores). */
  threads?: number;
  /** 'auto' (default) uses CUDA when its provider library is installed, else CPU. */
  provider?: Provider | 'auto';
  /** ORT graph optimisation level (default 'all'). */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Keep ORT's CPU memory arena (default true: fastest for repeated runs). False returns freed blocks to the
   * system, lowering resident memory between runs of large graphs at some speed cost.
   */
  arena?: boolean;
  /**
   * Let ORT pre-plan activation buffers from the first run's shapes (default true). For very large graphs the plan
   * keeps a second copy of the activations alive from the second run on (measured on the official UNet, batch 6:
   * 6.7 → 10.0 GiB); false trades a little speed for that memory.
   */
  memPattern?: boolean;
  /**
   * Let idle intra-op threads spin-wait for work (ORT's default; default here: false). Spinning shaves latency
   * off chains of tiny ops on a dedicated machine, but on a shared or oversubscribed CPU it burns the cores
   * other work needs (measured: ~3× the CPU time for the same runs, and slower wall time under load).
   */
  spin?: boolean;
  /**
   * Run linear layers whose weight is a float32 parameter in int8 (core/quantize.ts): weights quantized per output
   * when the session is created (and shared between sessions reading the same arrays), activations per run. For
   * inference only: weights updated in place later are not re-quantized.
   */
  int8?: boolean;
}

const ORT_TYPE: Record<InfoDType, ort.Tensor.Type> = {
  float32: 'float32', float16: 'float16', int64: 'int64', int32: 'int32', bool: 'bool', int8: 'int8',
};

/**
 * What `--device cuda` says when the provider is missing. The package's own installer fetches the CUDA binaries;
 * this project's npm settings never run it at install time (package.json allowScripts), so it is run by hand.
 */
export const CUDA_MISSING = "--device cuda: onnxruntime-node's CUDA provider is not installed here. On a machine " +
  'with an NVIDIA GPU (CUDA 12) run `node node_modules/onnxruntime-node/script/install ' +
  '--onnxruntime-node-install=cuda12` once (it downloads the CUDA binaries), or leave out --device to use the CPU.';

/** True when onnxruntime-node's CUDA provider library is present (installed with --onnxruntime-node-install=cuda12). */
export function cudaAvailable(): boolean {
  try {
    const req = createRequire(import.meta.url);
    const dir = dirname(req.resolve('onnxruntime-node'));
    const bin = join(dir, '..', 'bin', 'napi-v6', process.platform, process.arch);
    return existsSync(join(bin, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

function checkData(what: string, info: { shape: Shape; dtype: InfoDType }, data: HostData): void {
  const want = sizeOf(info.shape);
  const ok = info.dtype === 'float32' ? data instanceof Float32Array
    : info.dtype === 'int8' ? data instanceof Int8Array
    : info.dtype === 'float16' ? data instanceof Uint16Array
    : info.dtype === 'int64' ? data instanceof BigInt64Array
    : info.dtype === 'int32' ? data instanceof Int32Array
    : data instanceof Uint8Array;
  if (!ok) throw new GraphError(`${what}: expected ${info.dtype} data, got ${data.constructor.name}`);
  if (data.length !== want) throw new GraphError(`${what}: expected ${want} values for shape [${info.shape.join(',')}], got ${data.length}`);
}

function toOrt(info: { shape: Shape; dtype: InfoDType }, data: HostData): ort.Tensor {
  return new ort.Tensor(ORT_TYPE[info.dtype], data as ort.Tensor.DataType, [...info.shape]);
}

/** onnxruntime-node refuses views of SharedArrayBuffers (the optimizer's worker threads update those). */
const isShared = (d: HostData): boolean => typeof SharedArrayBuffer !== 'undefined' && d.buffer instanceof SharedArrayBuffer;

function privateCopy(d: HostData): HostData {
  const C = d.constructor as new (n: number) => HostData;
  const c = new C(d.length);
  (c as Float32Array).set(d as Float32Array);
  return c;
}

/**
 * One private copy per shared-memory parameter, for every session that reads it (a UNet cut into 60 sessions
 * would otherwise hold many copies of its weights), refreshed at most once per change of the shared parameters.
 * A session that swaps a parameter's source (one block graph run with each layer's weights in turn) hands the old
 * source's copy to the new one, so swapping through 24 layers keeps one layer's copies, not 24.
 */
const MIRRORS = new WeakMap<HostData, { copy: HostData; epoch: number }>();
let sharedEpoch = 0;

/** Says that shared-memory parameters were written (the optimizer calls it): the next runs refresh their copies. */
export function sharedParamsChanged(): void {
  sharedEpoch++;
}

function mirrorOf(src: HostData): { copy: HostData; epoch: number } {
  let m = MIRRORS.get(src);
  if (!m) MIRRORS.set(src, (m = { copy: privateCopy(src), epoch: sharedEpoch }));
  return m;
}

/** Moves `from`'s copy to `to` (marked stale); sessions still reading `from` get a fresh copy on their next run. */
function handOver(from: HostData, to: HostData): void {
  const m = MIRRORS.get(from);
  if (!m || MIRRORS.has(to) || m.copy.length !== to.length || m.copy.constructor !== to.constructor) return;
  MIRRORS.delete(from);
  MIRRORS.set(to, { copy: m.copy, epoch: -1 });
}

export class Session {
  private readonly paramTensors = new Map<string, ort.Tensor>();
  /**
   * Parameters held in shared memory, by name, with the copy this session's tensor reads: before a run the tensor
   * is re-pointed if the copy moved and the copy refreshed when stale.
   */
  private readonly mirrors = new Map<string, { info: GraphInputInfo; src: HostData; copy: HostData }>();

  private constructor(
    private readonly ortSession: ort.InferenceSession,
    readonly model: LoweredModel,
    readonly provider: Provider,
    params: ParamStore | undefined,
  ) {
    const missing: string[] = [];
    for (const p of model.inputs.filter((i) => i.kind === 'param')) {
      const data = p.derived ? derivedData(p, params) : params?.get(p.name);
      if (!data) { missing.push(p.derived?.from ?? p.name); continue; }
      checkData(`parameter "${p.name}"`, p, data);
      this.bindParam(p, data);
    }
    if (missing.length) {
      throw new GraphError(`Session: ${missing.length} parameter(s) missing from the store: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}`);
    }
  }

  /** Lowers the graph behind `outputs` and creates an ORT session for it. */
  static async create(outputs: Record<string, Tensor>, opts: SessionOptions = {}): Promise<Session> {
    const model = lower(outputs, 'facelift', { int8Linear: opts.int8 ?? false });
    const wanted = opts.provider ?? 'auto';
    const useCuda = wanted === 'cuda' || (wanted === 'auto' && cudaAvailable());
    const base: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: opts.optimization ?? 'all',
      enableCpuMemArena: opts.arena ?? true,
      enableMemPattern: opts.memPattern ?? true,
      extra: { session: { intra_op: { allow_spinning: opts.spin ? '1' : '0' }, inter_op: { allow_spinning: opts.spin ? '1' : '0' } } },
      ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    };
    let session: ort.InferenceSession;
    let provider: Provider = 'cpu';
    if (useCuda) {
      try {
        session = await ort.InferenceSession.create(model.bytes, { ...base, executionProviders: ['cuda', 'cpu'] });
        provider = 'cuda';
      } catch (e) {
        if (wanted === 'cuda') throw e;
        session = await ort.InferenceSession.create(model.bytes, { ...base, executionProviders: ['cpu'] });
      }
    } else {
      session = await ort.InferenceSession.create(model.bytes, { ...base, executionProviders: ['cpu'] });
    }
    return new Session(session, model, provider, opts.params);
  }

  /** The feeds this session needs (graph inputs that are not parameters). */
  get feeds(): readonly GraphInputInfo[] { return this.model.inputs.filter((i) => i.kind === 'input'); }

  /** Replaces one parameter's buffer (for in-place updates of the same buffer nothing needs to be called). */
  setParam(name: string, data: Float32Array | Uint16Array): void {
    const info = this.model.inputs.find((i) => i.kind === 'param' && i.name === name);
    // An int8 session reads the weight through its derived forms: those are re-derived from the new buffer.
    const derived = this.model.inputs.filter((i) => i.derived?.from === name);
    if (!info && derived.length === 0) throw new GraphError(`setParam: this graph has no parameter "${name}"`);
    if (info) {
      checkData(`parameter "${name}"`, info, data);
      this.bindParam(info, data);
    }
    for (const d of derived) this.bindParam(d, derivedData(d, new Map([[name, data]]))!);
  }

  private bindParam(info: GraphInputInfo, data: HostData): void {
    if (!isShared(data)) {
      this.mirrors.delete(info.name);
      this.paramTensors.set(info.name, toOrt(info, data));
      return;
    }
    const prev = this.mirrors.get(info.name);
    if (prev && prev.src !== data) handOver(prev.src, data);
    const { copy } = mirrorOf(data);
    this.mirrors.set(info.name, { info, src: data, copy });
    this.paramTensors.set(info.name, toOrt(info, copy));
  }

  /**
   * Runs the graph. Feeds are keyed by input name; results by output name. Outputs named in `into` are written
   * into those buffers (which must have the output's size and type) instead of freshly allocated ones.
   */
  async run(
    feeds: Record<string, HostData | HostTensor> = {},
    into: Record<string, HostData> = {},
  ): Promise<Record<string, HostTensor>> {
    for (const [name, entry] of this.mirrors) {
      const m = mirrorOf(entry.src);
      if (m.copy !== entry.copy) {
        entry.copy = m.copy;
        this.paramTensors.set(name, toOrt(entry.info, m.copy));
      }
      if (m.epoch === sharedEpoch) continue;
      (m.copy as Float32Array).set(entry.src as Float32Array);
      m.epoch = sharedEpoch;
    }
    const ortFeeds: Record<string, ort.Tensor> = Object.fromEntries(this.paramTensors);
    for (const info of this.feeds) {
      const f = feeds[info.name];
      if (f === undefined) throw new GraphError(`Session.run: missing input "${info.name}" (${info.dtype}[${info.shape.join(',')}])`);
      const data = ArrayBuffer.isView(f) ? f : f.data;
      checkData(`input "${info.name}"`, info, data);
      ortFeeds[info.name] = toOrt(info, isShared(data) ? privateCopy(data) : data);
    }
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const o of this.model.outputs) {
      const buf = into[o.name];
      if (buf) checkData(`output buffer "${o.name}"`, o, buf);
      if (buf && isShared(buf)) throw new GraphError(`Session.run: output buffer "${o.name}" is in shared memory, which onnxruntime cannot write`);
      fetches[o.name] = buf ? toOrt(o, buf) : null;
    }
    for (const name of Object.keys(into)) {
      if (!this.model.outputs.some((o) => o.name === name)) throw new GraphError(`Session.run: no output "${name}" to write into`);
    }
    const res = await this.ortSession.run(ortFeeds, fetches);
    const out: Record<string, HostTensor> = {};
    for (const o of this.model.outputs) {
      const t = res[o.name]!;
      out[o.name] = { data: t.data as HostData, shape: o.shape, dtype: o.dtype };
    }
    return out;
  }

  async release(): Promise<void> { await this.ortSession.release(); }
}

/** The int8 weight or its scales, from the float32 parameter they derive from (undefined when it is missing). */
function derivedData(info: GraphInputInfo, params: ParamStore | undefined): HostData | undefined {
  const d = info.derived!;
  const w = params?.get(d.from);
  if (!w) return undefined;
  if (!(w instanceof Float32Array)) throw new GraphError(`parameter "${d.from}": int8 weights derive from float32 ones`);
  const [inF, out] = d.form === 'int8-columns' ? (info.shape as [number, number]) : [w.length / info.shape[0]!, info.shape[0]!];
  const q = quantizedOf(w, out, inF);
  return d.form === 'int8-columns' ? q.q : q.scale;
}

/** Convenience: build-and-run once (tests, small utilities). */
export async function evaluate(outputs: Record<string, Tensor>, feeds: Record<string, HostData | HostTensor> = {}, opts: SessionOptions = {}): Promise<Record<string, HostTensor>> {
  const s = await Session.create(outputs, opts);
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}
