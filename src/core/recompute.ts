/**
 * A block trained with recomputation (gradient checkpointing) and bounded-memory attention.
 *
 * The block is any graph whose attention calls are `multiHeadAttention(…, { fused: true })`. It is cut at those
 * calls into segments — the ops between one attention and the next — and each segment is compiled twice: a
 * forward session and a "forward + vector-Jacobian product" session. `backward` then works from the block's
 * inputs alone: it recomputes the segments' boundary values (running attention block by block with
 * `FlashAttention`, which saves each query's log-sum-exp), and goes back through the segments in reverse,
 * each VJP session recomputing its own activations and the attention backward recomputing its probabilities.
 * Nothing of size tokens × tokens ever exists, and the activations alive at once are one segment's.
 *
 * `forward` runs the uncut block as one graph (onnxruntime's fused attention kernel), for the training forward
 * pass that keeps only block inputs. Where the block is cut and what each segment's graphs are: block-cuts.ts.
 */
import {
  buildSegment,
  headed,
  type BuiltSegment,
  inputKey,
  outputKey,
  planSegments,
  type BlockGraph,
  type Boundary,
  type Key,
} from './block-cuts.ts';
import { FlashAttention } from './flash-attention.ts';
import { GraphError, isFloat, sizeOf, type Shape, type Tensor } from './graph.ts';
import { Session, type HostTensor, type ParamStore, type Provider, type SessionOptions } from './session.ts';

export type { BlockGraph } from './block-cuts.ts';

export interface RecomputedBlockOptions {
  params: ParamStore;
  threads?: number;
  provider?: Provider | 'auto';
  /** Queries per attention block in the backward pass (default: FlashAttention's). */
  chunk?: number;
  /** Block inputs whose cotangents `backward` returns (default: every float input). */
  inputGrads?: readonly string[];
  /**
   * Keep onnxruntime's memory arena in every session (default true). A block cut into many sessions keeps each
   * one's peak while the arena is on; false hands the memory back after every run.
   */
  arena?: boolean;
}

export interface BlockGrads {
  /** ∂L/∂input for the inputs asked for; fresh arrays. */
  inputs: Record<string, Float32Array>;
  /**
   * ∂L/∂parameter by graph parameter name; buffers owned by the block, overwritten by the next `backward` — or,
   * when it was given `addTo`, that map, with scale · ∂L/∂parameter added into its buffers.
   */
  params: ReadonlyMap<string, Float32Array>;
}

/**
 * Where `backward` adds its parameter gradients (× scale) instead of returning them in buffers of its own: a
 * trainer's accumulators, so that a large model's gradients are held once, not twice. Every parameter the block
 * reads must have a buffer here, of the parameter's size; shared memory is fine.
 */
export interface GradAccumulation {
  addTo: ReadonlyMap<string, Float32Array>;
  scale: number;
}

export interface BackwardOptions {
  /** Add the parameter gradients into these accumulators instead of returning buffers of the block's own. */
  accumulate?: GradAccumulation;
  /**
   * What `forwardSaving` kept for these feeds: the backward then skips recomputing the values crossing the cuts (and,
   * when residuals were kept, each segment's forward inside its VJP).
   */
  saved?: SavedActivations;
}

export interface SavingOptions {
  /**
   * Also keep every forward value the segments' backward reads (activations inside the segments, not only at the
   * cuts), so that the backward does no forward work at all: about one more forward's worth of time saved, for
   * the memory of all the block's activations except attention's probabilities.
   */
  residuals?: boolean;
}

/**
 * A block's activations kept by `forwardSaving` for one `backward`: the values crossing its cuts and each
 * attention's log-sum-exp, in buffers of their own (one set per call, so a block reused for many layers can keep
 * one per layer).
 */
export class SavedActivations {
  constructor(
    /** Bytes held. */
    readonly bytes: number,
  ) {}
}

interface Cuts {
  block: RecomputedBlock;
  env: Map<Key, Float32Array>;
  lse: Map<Attention, Float32Array>;
  /** Whether `env` also holds the segments' residuals. */
  residuals: boolean;
}
const SAVED = new WeakMap<SavedActivations, Cuts>();


interface Segment {
  level: number;
  /** Values it reads, in its input order. */
  ins: Boundary[];
  /** Values it produces for later segments, attention or the block's outputs. */
  outs: Boundary[];
  fwd: Session | null;
  /** A last-level segment's forward, made when `forwardSaving` first needs it (a backward never does). */
  final?: { outputs: Record<string, Tensor>; session?: Session };
  vjp: Session;
  /** VJP outputs: `d:<key>` for differentiable inputs, `grad/<param>`. */
  gradKeys: Key[];
  params: string[];
  /**
   * The forward that also hands out the residuals, and the VJP that takes them instead of recomputing the forward;
   * sessions made when `forwardSaving` first asks for residuals. Absent where a residual is not float32.
   */
  residual?: {
    keys: Boundary[];
    forward: Record<string, Tensor>;
    vjp: Record<string, Tensor>;
    sessions?: { forward: Session; vjp: Session };
  };
}

interface Attention {
  level: number;
  q: Key;
  k: Key;
  v: Key;
  out: Key;
  flash: FlashAttention;
}

export class RecomputedBlock {
  private readonly pool = new Map<string, Float32Array>();
  private readonly paramGrads = new Map<string, Float32Array>();
  private gradScratchSize?: number;
  /** Parameters swapped in by `setParam`, for sessions made later. */
  private readonly swapped = new Map<string, Float32Array | Uint16Array>();

  private constructor(
    private readonly whole: Session,
    private readonly segments: Segment[],
    private readonly attentions: Attention[],
    private readonly inputNames: string[],
    private readonly sessionOptions: SessionOptions,
  ) {}

  static async create(block: BlockGraph, opts: RecomputedBlockOptions): Promise<RecomputedBlock> {
    const arena = opts.arena ?? true;
    const sess = {
      threads: opts.threads,
      provider: opts.provider ?? 'cpu',
      params: opts.params,
      memPattern: false,
      arena,
    };
    const inputNames = Object.keys(block.inputs);
    const wantGrads = new Set(opts.inputGrads ?? inputNames.filter((n) => isFloat(block.inputs[n]!.dtype)));
    const plan = planSegments(block);
    const whole = await Session.create(block.outputs, sess);
    const segments: Segment[] = [];
    for (const p of plan.segments) {
      const built = buildSegment(p, block, wantGrads);
      const fwd = p.level < plan.maxLevel && built.fwdOutputs ? await Session.create(built.fwdOutputs, sess) : null;
      const vjpSession = await Session.create(built.vjpOutputs, sess);
      segments.push({
        level: p.level,
        ins: p.ins,
        outs: p.outs,
        fwd,
        ...(!fwd && built.fwdOutputs ? { final: { outputs: built.fwdOutputs } } : {}),
        vjp: vjpSession,
        gradKeys: built.gradKeys,
        params: built.params,
        ...residualOf(built),
      });
    }
    const attentions: Attention[] = [];
    for (const a of plan.attentions) {
      const [q, k, v] = a.node.inputs as [Tensor, Tensor, Tensor];
      const { heads, scale } = a.node.attrs as { heads: number; scale: number };
      const [b, lq, c] = q.shape as [number, number, number];
      const flash = await FlashAttention.create(
        { n: b * heads, lq, lk: k.shape[1]!, d: c / heads, dv: v.shape[2]! / heads },
        {
          scale,
          threads: opts.threads,
          provider: opts.provider ?? 'cpu',
          arena,
          ...(opts.chunk ? { chunk: opts.chunk } : {}),
        },
      );
      attentions.push({ level: a.level, q: headed(q), k: headed(k), v: headed(v), out: headed(a.out), flash });
    }
    return new RecomputedBlock(whole, segments, attentions, inputNames, sess);
  }

  private get outputNames(): string[] {
    return this.whole.model.outputs.map((o) => o.name);
  }

  /** Parameter names the block reads. */
  get paramNames(): string[] {
    return this.whole.model.inputs.filter((i) => i.kind === 'param').map((i) => i.name);
  }

  /** Swaps one parameter's buffer in every session that reads it (per-layer weights of a shared block). */
  setParam(name: string, data: Float32Array | Uint16Array): void {
    this.swapped.set(name, data);
    for (const s of this.sessions()) {
      if (s.model.inputs.some((i) => i.kind === 'param' && i.name === name)) s.setParam(name, data);
    }
  }

  private *sessions(): Generator<Session> {
    yield this.whole;
    for (const s of this.segments) {
      if (s.fwd) yield s.fwd;
      if (s.final?.session) yield s.final.session;
      yield s.vjp;
      if (s.residual?.sessions) yield* [s.residual.sessions.forward, s.residual.sessions.vjp];
    }
  }

  /** The block's outputs (one run of the uncut graph). */
  async forward(feeds: Record<string, Float32Array>): Promise<Record<string, Float32Array>> {
    const o = await this.whole.run(feeds);
    return Object.fromEntries(Object.entries(o).map(([k, t]) => [k, f32(t)]));
  }

  /**
   * The block's outputs, run segment by segment with flash attention, keeping what the backward would otherwise
   * recompute: one forward's worth of work less per backward, for the memory `SavedActivations.bytes` says.
   */
  async forwardSaving(
    feeds: Record<string, Float32Array>,
    opts: SavingOptions = {},
  ): Promise<{ outputs: Record<string, Float32Array>; saved: SavedActivations }> {
    const cuts = await this.cuts(feeds, false, opts.residuals ?? false);
    const outputs: Record<string, Float32Array> = {};
    for (const name of this.outputNames) outputs[name] = need(cuts.env, outputKey(name));
    let bytes = 0;
    for (const [k, v] of cuts.env) if (!k.startsWith('in:')) bytes += v.byteLength;
    for (const v of cuts.lse.values()) bytes += v.byteLength;
    const saved = new SavedActivations(bytes);
    SAVED.set(saved, cuts);
    return { outputs, saved };
  }

  /**
   * Every value that crosses a cut, and each attention's log-sum-exp, from the block's inputs: in the reused
   * scratch buffers (`reuse`, inside a backward) or in new ones (kept for a later backward).
   */
  private async cuts(feeds: Record<string, Float32Array>, reuse: boolean, residuals = false): Promise<Cuts> {
    const env = new Map<Key, Float32Array>();
    for (const n of this.inputNames) {
      const f = feeds[n];
      if (!f) throw new GraphError(`RecomputedBlock: missing input "${n}"`);
      env.set(inputKey(n), f);
    }
    const buffer = (name: string, size: number) => (reuse ? this.scratch(name, size) : new Float32Array(size));
    const lse = new Map<Attention, Float32Array>();
    for (const seg of this.segments) {
      for (const a of this.attentions.filter((x) => x.level === seg.level)) {
        const fwd = await a.flash.forward(need(env, a.q), need(env, a.k), need(env, a.v), {
          o: buffer(`o:${a.out}`, a.flash.shape.n * a.flash.shape.lq * a.flash.shape.dv),
          lse: buffer(`lse:${a.out}`, a.flash.shape.n * a.flash.shape.lq),
        });
        env.set(a.out, fwd.o);
        lse.set(a, fwd.lse);
      }
      if (residuals && seg.residual) {
        const r = seg.residual;
        r.sessions ??= { forward: await this.lateSession(r.forward), vjp: await this.lateSession(r.vjp) };
        const all = [...seg.outs, ...r.keys];
        const into = Object.fromEntries(all.map((o) => [o.key, new Float32Array(sizeOf(o.shape))]));
        await r.sessions.forward.run(this.feedsOf(seg, env), into);
        for (const o of all) env.set(o.key, into[o.key]!);
        continue;
      }
      const final = seg.final;
      const fwd = seg.fwd ?? (reuse || !final ? null : (final.session ??= await this.lateSession(final.outputs)));
      if (!fwd) continue;
      const into = Object.fromEntries(seg.outs.map((o) => [o.key, buffer(`v:${o.key}`, sizeOf(o.shape))]));
      await fwd.run(this.feedsOf(seg, env), into);
      for (const o of seg.outs) env.set(o.key, into[o.key]!);
    }
    return { block: this, env, lse, residuals };
  }

  /** A session made after `create`, with the parameters swapped in since. */
  private async lateSession(outputs: Record<string, Tensor>): Promise<Session> {
    const session = await Session.create(outputs, this.sessionOptions);
    for (const [name, data] of this.swapped) {
      if (session.model.inputs.some((i) => i.kind === 'param' && i.name === name)) session.setParam(name, data);
    }
    return session;
  }

  /** Reused scratch buffer per name (activation-sized values inside one `backward`). */
  private scratch(name: string, size: number): Float32Array {
    let b = this.pool.get(name);
    if (!b || b.length !== size) this.pool.set(name, (b = new Float32Array(size)));
    return b;
  }

  /** Gradients of Σ⟨output, cotangent⟩ with respect to the inputs asked for and every parameter. */
  async backward(
    feeds: Record<string, Float32Array>,
    cotangents: Record<string, Float32Array>,
    opts: BackwardOptions = {},
  ): Promise<BlockGrads> {
    const acc = opts.accumulate;
    // Checked before any accumulator is touched, so a missing one leaves them all as they were.
    if (acc) for (const p of this.paramNames) accumulator(acc, p, sizeOf(this.paramShape(p) ?? [0]));
    const kept = opts.saved && SAVED.get(opts.saved);
    if (opts.saved && kept?.block !== this) {
      throw new GraphError('RecomputedBlock.backward: saved activations from another block');
    }
    for (const n of this.inputNames) {
      if (!feeds[n]) throw new GraphError(`RecomputedBlock.backward: missing input "${n}"`);
      if (kept && kept.env.get(inputKey(n)) !== feeds[n]) {
        throw new GraphError(`RecomputedBlock.backward: input "${n}" is not the one its saved activations came from`);
      }
    }
    // 1. Every value that crosses a cut, with each attention's log-sum-exp: kept by forwardSaving, or recomputed.
    const { env, lse } = kept ?? (await this.cuts(feeds, true));

    // 2. Back through the segments, last first; each attention after the segment that reads its output.
    const cot = new Map<Key, Float32Array>();
    for (const [name, c] of Object.entries(cotangents)) cot.set(outputKey(name), c);
    const accumulate = (key: Key, g: Float32Array, owned: boolean) => {
      const prev = cot.get(key);
      if (!prev) cot.set(key, owned ? g : Float32Array.from(g));
      else for (let i = 0; i < prev.length; i++) prev[i] += g[i]!;
    };
    const seenParams = new Set<string>();
    const result: Record<string, Float32Array> = {};
    for (let s = this.segments.length - 1; s >= 0; s--) {
      const seg = this.segments[s]!;
      const feeds2 = this.feedsOf(seg, env);
      for (const o of seg.outs) feeds2[`grad:${o.key}`] = cot.get(o.key) ?? new Float32Array(sizeOf(o.shape));
      const into = acc ? this.segmentGradScratch(seg) : this.segmentGradBuffers(seg, seenParams);
      const res = kept?.residuals && seg.residual?.sessions ? seg.residual : undefined;
      if (res) for (const r of res.keys) feeds2[r.key] = need(env, r.key);
      const out = await (res?.sessions?.vjp ?? seg.vjp).run(feeds2, into);
      // Each cut value has one producer, visited after all its readers: its cotangent is now used up, and letting
      // it go keeps only the cotangents still to be consumed alive, not every one of the block's.
      for (const o of seg.outs) cot.delete(o.key);
      for (const key of seg.gradKeys) {
        const g = f32(out[key]);
        if (key.startsWith('grad/')) {
          const p = key.slice(5);
          if (acc) addScaled(accumulator(acc, p, g.length), g, acc.scale);
          else if (seenParams.has(p)) addInto(this.paramGrads.get(p)!, g);
          seenParams.add(p);
        } else {
          const k = key.slice(2);
          if (k.startsWith('in:')) {
            const name = k.slice(3);
            if (result[name]) addInto(result[name], g);
            else result[name] = g;
          } else accumulate(k, g, true);
        }
      }
      for (const a of this.attentions.filter((x) => x.level === seg.level)) {
        const dO = cot.get(a.out);
        if (!dO) continue;
        cot.delete(a.out);
        const { n, lq, lk, d, dv } = a.flash.shape;
        const gr = await a.flash.backward(
          need(env, a.q),
          need(env, a.k),
          need(env, a.v),
          { o: need(env, a.out), lse: lse.get(a)! },
          dO,
          {
            dq: this.scratch(`dq:${a.out}`, n * lq * d),
            dk: this.scratch(`dk:${a.out}`, n * lk * d),
            dv: this.scratch(`dv:${a.out}`, n * lk * dv),
          },
        );
        accumulate(a.q, gr.dq, false);
        accumulate(a.k, gr.dk, false);
        accumulate(a.v, gr.dv, false);
      }
    }
    if (acc) return { inputs: result, params: acc.addTo };
    for (const p of this.paramNames) {
      if (!seenParams.has(p)) {
        const shape = this.whole.model.inputs.find((i) => i.name === p)!.shape;
        this.paramBuffer(p, sizeOf(shape)).fill(0);
      }
    }
    return { inputs: result, params: this.paramGrads };
  }

  /** A parameter read by several segments gets its first gradient in the block's buffer and the others added. */
  private segmentGradBuffers(seg: Segment, seen: ReadonlySet<string>): Record<string, Float32Array> {
    const into: Record<string, Float32Array> = {};
    for (const p of seg.params) {
      const shape = this.paramShape(p);
      if (shape && !seen.has(p)) into[`grad/${p}`] = this.paramBuffer(p, sizeOf(shape));
    }
    return into;
  }

  /** Views of one scratch buffer, reused by every segment: what a segment's parameter gradients need at most. */
  private segmentGradScratch(seg: Segment): Record<string, Float32Array> {
    const segmentSize = (s: Segment) => s.params.reduce((n, p) => n + sizeOf(this.paramShape(p) ?? [0]), 0);
    this.gradScratchSize ??= Math.max(0, ...this.segments.map(segmentSize));
    const buf = this.scratch('param-grads', this.gradScratchSize);
    const into: Record<string, Float32Array> = {};
    let at = 0;
    for (const p of seg.params) {
      const shape = this.paramShape(p);
      if (!shape) continue;
      const n = sizeOf(shape);
      into[`grad/${p}`] = buf.subarray(at, at + n);
      at += n;
    }
    return into;
  }

  private paramShape(p: string): Shape | undefined {
    return this.whole.model.inputs.find((i) => i.name === p)?.shape;
  }

  private paramBuffer(name: string, size: number): Float32Array {
    let b = this.paramGrads.get(name);
    if (!b) this.paramGrads.set(name, (b = new Float32Array(size)));
    return b;
  }

  private feedsOf(seg: Segment, env: Map<Key, Float32Array>): Record<string, Float32Array> {
    return Object.fromEntries(seg.ins.map((i) => [i.key, need(env, i.key)]));
  }

  async release(): Promise<void> {
    for (const s of this.sessions()) await s.release();
    for (const a of this.attentions) await a.flash.release();
  }
}

function residualOf(built: BuiltSegment): Pick<Segment, 'residual'> {
  const { residuals, vjpOutputs } = built.fromResiduals;
  const tensors = Object.entries(residuals);
  if (tensors.some(([, t]) => t.dtype !== 'float32')) return {};
  return {
    residual: {
      keys: tensors.map(([key, t]) => ({ key, shape: t.shape })),
      forward: { ...(built.fwdOutputs ?? {}), ...residuals },
      vjp: vjpOutputs,
    },
  };
}

function need(env: Map<Key, Float32Array>, key: Key): Float32Array {
  const v = env.get(key);
  if (!v) throw new GraphError(`RecomputedBlock: internal error (no value for ${key})`);
  return v;
}

function addInto(acc: Float32Array, g: Float32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] += g[i]!;
}

function addScaled(acc: Float32Array, g: Float32Array, scale: number): void {
  for (let i = 0; i < acc.length; i++) acc[i] += scale * g[i]!;
}

function accumulator(acc: GradAccumulation, p: string, n: number): Float32Array {
  const a = acc.addTo.get(p);
  if (!a || a.length !== n) {
    throw new GraphError(`RecomputedBlock.backward: no gradient accumulator of ${n} values for parameter "${p}"`);
  }
  return a;
}

function f32(t: HostTensor | undefined): Float32Array {
  if (!t || !(t.data instanceof Float32Array))
    throw new GraphError('RecomputedBlock: a session returned a non-float32 output');
  return t.data;
}
