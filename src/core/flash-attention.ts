/**
 * Attention forward and backward in bounded memory, the way FlashAttention does it (Dao et al. 2022, alg. 2 and
 * 4), driven from the host: one onnxruntime run per (head, query block) sees only that block's scores
 * [chunk, Lk], so peak memory is one block's working set plus the O(L·D) tensors, at any sequence length.
 *
 * The forward returns the output and each query's log-sum-exp of its scaled scores; the backward recomputes
 * the block's probabilities from that saved log-sum-exp (P = exp(S − lse), no row reductions over the scores)
 * and returns dQ for the block plus its contribution to dK and dV, which the host accumulates per head.
 *
 * Why on the host and not as one graph: onnxruntime schedules every block's backward products as soon as the
 * upstream gradient exists, so a single graph holding all blocks keeps O(Lq·Lk) alive (measured; core/README.md
 * "Attention memory"). Separate runs are the one ordering ORT cannot change.
 *
 * Layout: q [N, Lq, D], k [N, Lk, D], v [N, Lk, Dv], o/dO [N, Lq, Dv], lse [N, Lq], with N = batch·heads,
 * contiguous float32 — i.e. [B, H, L, D] tensors as `splitHeads` produces them.
 */
import { Graph, GraphError, type Tensor } from './graph.ts';
import { add, div, exp, log, mul, sub } from './ops/elementwise.ts';
import { matmul } from './ops/nn.ts';
import { mT, reduceMax, reduceSum } from './ops/shape.ts';
import { Session, type Provider } from './session.ts';

export interface FlashShape {
  /** Batch × heads. */
  n: number;
  lq: number;
  lk: number;
  /** Query/key width. */
  d: number;
  /** Value width (default d). */
  dv?: number;
}

export interface FlashOptions {
  /** Multiplier of q·k (default 1/√d). */
  scale?: number;
  /** Queries per block (default 1024; the block's scores are chunk × Lk floats, a few of them at once). */
  chunk?: number;
  threads?: number;
  provider?: Provider | 'auto';
  /** Keep onnxruntime's memory arena (default true). */
  arena?: boolean;
}

export interface FlashForward {
  o: Float32Array;
  lse: Float32Array;
}

export interface FlashGrads {
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
}

/** One query block: o = softmax(s) v and lse = log Σ exp(s) per row, with s = q kᵀ·scale. */
function forwardGraph(n: number, lk: number, d: number, dv: number, scale: number): Record<string, Tensor> {
  const g = new Graph('flash_forward');
  const q = g.input('q', [n, d]),
    k = g.input('k', [lk, d]),
    v = g.input('v', [lk, dv]);
  const s = matmul(mul(q, scale), mT(k));
  const m = reduceMax(s, -1, true);
  const e = exp(sub(s, m));
  const z = reduceSum(e, -1, true);
  return { o: div(matmul(e, v), z), lse: add(m, log(z)) };
}

/**
 * One query block's backward: with P = exp(s − lse) and Δ = rowsum(dO ∘ O),
 * dV = Pᵀ dO, dS = P ∘ (dO Vᵀ − Δ), dQ = dS K·scale, dK = dSᵀ Q·scale.
 */
function backwardGraph(
  n: number,
  lk: number,
  d: number,
  dv: number,
  scale: number,
  acc: boolean,
): Record<string, Tensor> {
  const g = new Graph('flash_backward');
  const q = g.input('q', [n, d]),
    k = g.input('k', [lk, d]),
    v = g.input('v', [lk, dv]);
  const o = g.input('o', [n, dv]),
    lse = g.input('lse', [n, 1]),
    dO = g.input('dO', [n, dv]);
  const qs = mul(q, scale);
  const p = exp(sub(matmul(qs, mT(k)), lse));
  const delta = reduceSum(mul(dO, o), -1, true);
  const ds = mul(p, sub(matmul(dO, mT(v)), delta));
  // dSᵀQ as (QᵀdS)ᵀ: MLAS runs a transposed small operand much faster than a transposed block of scores.
  let dk = mT(matmul(mT(qs), ds)),
    dvOut = mT(matmul(mT(dO), p));
  // Later blocks add the running dK, dV inside the run (multi-threaded, and no extra pass on the host).
  if (acc) {
    dk = add(dk, g.input('dkAcc', [lk, d]));
    dvOut = add(dvOut, g.input('dvAcc', [lk, dv]));
  }
  return { dq: mul(matmul(ds, k), scale), dk, dv: dvOut };
}

interface BlockSessions {
  fwd: Session;
  /** The first block of a head (the full-size block only: a shorter tail block is never first). */
  bwd: Session | null;
  /** A later block, adding the running dK, dV. */
  bwdAcc: Session | null;
}

export class FlashAttention {
  private constructor(
    readonly shape: Required<FlashShape>,
    readonly chunk: number,
    private readonly full: BlockSessions,
    private readonly tail: BlockSessions | null,
  ) {}

  static async create(shape: FlashShape, opts: FlashOptions = {}): Promise<FlashAttention> {
    const dv = shape.dv ?? shape.d;
    const { n, lq, lk, d } = shape;
    for (const [k, x] of Object.entries({ n, lq, lk, d, dv })) {
      if (!Number.isInteger(x) || x < 1)
        throw new GraphError(`FlashAttention: ${k} must be a positive integer, got ${x}`);
    }
    const scale = opts.scale ?? 1 / Math.sqrt(d);
    const chunk = Math.min(lq, Math.max(1, Math.floor(opts.chunk ?? 1024)));
    // ORT's pre-planned activation pattern makes the large elementwise ops several times slower here (measured).
    const sess = { threads: opts.threads, provider: opts.provider ?? 'cpu', memPattern: false, arena: opts.arena ?? true };
    const make = async (rows: number, first: boolean): Promise<BlockSessions> => ({
      fwd: await Session.create(forwardGraph(rows, lk, d, dv, scale), sess),
      bwd: first ? await Session.create(backwardGraph(rows, lk, d, dv, scale, false), sess) : null,
      bwdAcc: lq > chunk ? await Session.create(backwardGraph(rows, lk, d, dv, scale, true), sess) : null,
    });
    const rest = lq % chunk;
    return new FlashAttention(
      { n, lq, lk, d, dv },
      chunk,
      await make(chunk, true),
      rest ? await make(rest, false) : null,
    );
  }

  /** Blocks of queries: [start, rows, sessions]. */
  private *blocks(): Generator<[number, number, BlockSessions]> {
    const { lq } = this.shape;
    for (let q0 = 0; q0 < lq; q0 += this.chunk) {
      const rows = Math.min(this.chunk, lq - q0);
      yield [q0, rows, rows === this.chunk ? this.full : (this.tail as BlockSessions)];
    }
  }

  private check(what: string, a: Float32Array, len: number): void {
    if (a.length !== len) throw new GraphError(`FlashAttention: ${what} has ${a.length} values, expected ${len}`);
  }

  /** softmax(q kᵀ·scale) v and the per-query log-sum-exp, written into `into` when given. */
  async forward(q: Float32Array, k: Float32Array, v: Float32Array, into?: FlashForward): Promise<FlashForward> {
    const { n, lq, lk, d, dv } = this.shape;
    this.check('q', q, n * lq * d);
    this.check('k', k, n * lk * d);
    this.check('v', v, n * lk * dv);
    const o = into?.o ?? new Float32Array(n * lq * dv);
    const lse = into?.lse ?? new Float32Array(n * lq);
    for (let h = 0; h < n; h++) {
      const kh = k.subarray(h * lk * d, (h + 1) * lk * d),
        vh = v.subarray(h * lk * dv, (h + 1) * lk * dv);
      for (const [q0, rows, s] of this.blocks()) {
        const r0 = h * lq + q0;
        await s.fwd.run(
          { q: q.subarray(r0 * d, (r0 + rows) * d), k: kh, v: vh },
          { o: o.subarray(r0 * dv, (r0 + rows) * dv), lse: lse.subarray(r0, r0 + rows) },
        );
      }
    }
    return { o, lse };
  }

  /** Gradients of Σ⟨o, dO⟩ with respect to q, k and v, from the forward's o and lse. */
  async backward(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    fwd: FlashForward,
    dO: Float32Array,
    into?: FlashGrads,
  ): Promise<FlashGrads> {
    const { n, lq, lk, d, dv } = this.shape;
    this.check('dO', dO, n * lq * dv);
    this.check('o', fwd.o, n * lq * dv);
    this.check('lse', fwd.lse, n * lq);
    const dq = into?.dq ?? new Float32Array(n * lq * d);
    const dk = into?.dk ?? new Float32Array(n * lk * d);
    const dvOut = into?.dv ?? new Float32Array(n * lk * dv);
    // Ping-pong between the output slice and a scratch pair so that the last block writes the output slice.
    const spare = { dk: new Float32Array(lk * d), dv: new Float32Array(lk * dv) };
    const blocks = [...this.blocks()];
    for (let h = 0; h < n; h++) {
      const kh = k.subarray(h * lk * d, (h + 1) * lk * d),
        vh = v.subarray(h * lk * dv, (h + 1) * lk * dv);
      const mine = {
        dk: dk.subarray(h * lk * d, (h + 1) * lk * d),
        dv: dvOut.subarray(h * lk * dv, (h + 1) * lk * dv),
      };
      let prev: { dk: Float32Array; dv: Float32Array } | null = null;
      for (let b = 0; b < blocks.length; b++) {
        const [q0, rows, s] = blocks[b]!;
        const r0 = h * lq + q0;
        const qd = (a: Float32Array) => a.subarray(r0 * d, (r0 + rows) * d);
        const qv = (a: Float32Array) => a.subarray(r0 * dv, (r0 + rows) * dv);
        const target = (blocks.length - 1 - b) % 2 === 0 ? mine : spare;
        const feeds = { q: qd(q), k: kh, v: vh, o: qv(fwd.o), lse: fwd.lse.subarray(r0, r0 + rows), dO: qv(dO) };
        const session = prev ? s.bwdAcc : s.bwd;
        if (!session) throw new GraphError('FlashAttention: internal error (no session for this block)');
        await session.run(prev ? { ...feeds, dkAcc: prev.dk, dvAcc: prev.dv } : feeds, { dq: qd(dq), ...target });
        prev = target;
      }
    }
    return { dq, dk, dv: dvOut };
  }

  async release(): Promise<void> {
    for (const s of [this.full, this.tail]) {
      if (s) await Promise.all([s.fwd, s.bwd, s.bwdAcc].map((x) => x?.release()));
    }
  }
}
