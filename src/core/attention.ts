/**
 * Scaled-dot-product attention. Three ways to build it, all with the same numbers:
 *
 * - explicit (default): per chunk of queries (and optionally heads) matmul → softmax → matmul from the op
 *   table, so the score matrix that exists at any time is [B, headChunk, chunk, Lk] instead of [B, H, Lq, Lk]
 *   (GS-LRM, 24,578 tokens × 16 heads: 38.7 GB whole; 4 heads × 2048 queries: 0.8 GB). Autodiff keeps each
 *   chunk's softmax output for the backward pass.
 * - `remat`: one `sdpaBlock` node per chunk whose gradient rule recomputes the chunk's scores (≈ one extra QKᵀ
 *   per chunk) instead of keeping the forward's. ORT currently schedules all chunks' backward work together, so
 *   this does not yet bound training memory (measured; see README).
 * - `fused`: onnxruntime's `com.microsoft.MultiHeadAttention`, which on CPU runs a flash-attention kernel
 *   (no score matrix at all; measured in bench/core.ts). Its gradient is the rematerialised explicit form.
 */
import { GraphError, defineOp, describe, isFloat, type OpDef, type Tensor, type TensorInfo } from './graph.ts';
import { A } from './attrs.ts';
import { add, mul, sub } from './ops/elementwise.ts';
import { matmul, softmax } from './ops/nn.ts';
import { concat, mT, narrow, reduceSum, reshape, transpose } from './ops/shape.ts';

export interface SdpaOptions {
  /** Multiplier of q·k (default 1/√d). */
  scale?: number;
  /** Queries per chunk (default: all). With `fused`, only the backward pass is chunked. */
  chunk?: number;
  /** Heads per chunk (default: all). With `fused`, only the backward pass is chunked. */
  headChunk?: number;
  /** Recompute each chunk's scores in the backward pass instead of keeping them (bounded training memory). */
  remat?: boolean;
  /** Use onnxruntime's fused (flash) MultiHeadAttention kernel for the forward pass. */
  fused?: boolean;
}

function sameFloat(ins: readonly TensorInfo[]): void {
  if (!isFloat(ins[0]!.dtype) || ins.some((t) => t.dtype !== ins[0]!.dtype)) throw new Error('needs float inputs of one dtype');
}

/** One attention block softmax(q kᵀ·scale) v on [B,H,L,D] as a single node, differentiated by recomputation. */
export const SdpaBlockOp: OpDef<{ scale: number }> = defineOp({
  name: 'sdpaBlock',
  infer: (ins) => {
    sameFloat(ins);
    const [q, , v] = ins as [TensorInfo, TensorInfo, TensorInfo];
    return { shape: [...q.shape.slice(0, 3), v.shape[3]!], dtype: q.dtype };
  },
  lower: (b, [q, k, v], { scale }, { out }) => {
    const kt = b.node('Transpose', [k!], { perm: A.is([0, 1, 3, 2]) });
    const qs = b.node('Mul', [q!, b.scalar(scale, out.dtype)]);
    const p = b.node('Softmax', [b.node('MatMul', [qs, kt])], { axis: A.i(-1) });
    return b.node('MatMul', [p, v!]);
  },
  grad: (g, [q, k, v], _y, { scale }) => {
    const p = softmax(matmul(mul(q!, scale), mT(k!)), -1);
    const gp = matmul(g, mT(v!));
    const gs = mul(p, sub(gp, reduceSum(mul(gp, p), -1, true)));
    return [mul(matmul(gs, k!), scale), mul(matmul(mT(gs), q!), scale), matmul(mT(p), g)];
  },
});

function checkBHLD(q: Tensor, k: Tensor, v: Tensor): void {
  const bad = q.rank !== 4 || k.rank !== 4 || v.rank !== 4
    || q.shape[0] !== k.shape[0] || k.shape[0] !== v.shape[0]
    || q.shape[1] !== k.shape[1] || k.shape[1] !== v.shape[1]
    || q.shape[3] !== k.shape[3] || k.shape[2] !== v.shape[2];
  if (bad) throw new GraphError(`sdpa: expected q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv] (inputs: ${[q, k, v].map(describe).join(', ')})`);
}

/** softmax(q kᵀ · scale) v for q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv] → [B,H,Lq,Dv]. */
export function sdpa(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions = {}): Tensor {
  checkBHLD(q, k, v);
  const heads = q.shape[1]!;
  if (opts.fused) return splitHeads(multiHeadAttention(mergeHeads(q), mergeHeads(k), mergeHeads(v), heads, opts), heads);
  const [, , lq, d] = q.shape as [number, number, number, number];
  const chunk = Math.max(1, Math.min(opts.chunk ?? lq, lq));
  const headChunk = Math.max(1, Math.min(opts.headChunk ?? heads, heads));
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  // Scaling q (Lq·D values) is cheaper than scaling the scores (Lq·Lk).
  const qs = opts.remat ? q : mul(q, scale);
  const kT = opts.remat ? k : mT(k);
  const perHead: Tensor[] = [];
  for (let h0 = 0; h0 < heads; h0 += headChunk) {
    const nh = Math.min(headChunk, heads - h0);
    const qh = narrow(qs, 1, h0, nh), kh = narrow(kT, 1, h0, nh), vh = narrow(v, 1, h0, nh);
    const rows: Tensor[] = [];
    for (let q0 = 0; q0 < lq; q0 += chunk) {
      const qc = narrow(qh, 2, q0, Math.min(chunk, lq - q0));
      rows.push(opts.remat ? q.graph.apply(SdpaBlockOp, [qc, kh, vh], { scale }) : matmul(softmax(matmul(qc, kh), -1), vh));
    }
    perHead.push(concat(rows, 2));
  }
  return concat(perHead, 1);
}

/** [B, L, H·D] → [B, H, L, D]. */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [b, l, c] = x.shape as [number, number, number];
  if (x.rank !== 3 || c % heads !== 0) throw new GraphError(`splitHeads: ${describe(x)} is not [B, L, C] with C divisible by ${heads} heads`);
  return transpose(reshape(x, [b, l, heads, c / heads]), [0, 2, 1, 3]);
}

/** [B, H, L, D] → [B, L, H·D]. */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, l, d] = x.shape as [number, number, number, number];
  return reshape(transpose(x, [0, 2, 1, 3]), [b, l, h * d]);
}

interface MhaAttrs { heads: number; scale: number; chunk?: number; headChunk?: number }

/** onnxruntime's fused multi-head attention on [B, L, H·D] tensors; backward = rematerialised explicit chunks. */
export const FusedMhaOp: OpDef<MhaAttrs> = defineOp({
  name: 'fusedMultiHeadAttention',
  infer: (ins, { heads }) => {
    sameFloat(ins);
    const [q, k, v] = ins as [TensorInfo, TensorInfo, TensorInfo];
    const ok = q.shape.length === 3 && k.shape.length === 3 && v.shape.length === 3 && q.shape[0] === k.shape[0] && k.shape[0] === v.shape[0]
      && q.shape[2] === k.shape[2] && k.shape[1] === v.shape[1] && q.shape[2]! % heads === 0 && v.shape[2]! % heads === 0;
    if (!ok) throw new Error(`expected q [B,Lq,H·D], k [B,Lk,H·D], v [B,Lk,H·Dv] with H = ${heads}`);
    return { shape: [q.shape[0]!, q.shape[1]!, v.shape[2]!], dtype: q.dtype };
  },
  lower: (b, [q, k, v], { heads, scale }) => b.node('MultiHeadAttention', [q!, k!, v!], { num_heads: A.i(heads), scale: A.f(scale) }, 'com.microsoft'),
  grad: (g, [q, k, v], _y, attrs) => chainedAttentionGrad(g, q!, k!, v!, attrs),
});

/**
 * Backward of attention on [B, L, H·D], one (head chunk × query chunk) block after another: each block
 * recomputes its scores, and a zero-valued token (0·Σ of the previous block's running dK) feeds its inputs, so
 * ORT cannot start a block before the previous one has finished. Peak memory is then one block's scores, not
 * Lq·Lk (ORT otherwise schedules every block's products as soon as the upstream gradient exists).
 */
function chainedAttentionGrad(g: Tensor, q: Tensor, k: Tensor, v: Tensor, { heads, scale, chunk, headChunk }: MhaAttrs): Tensor[] {
  const qh = splitHeads(q, heads), kh = splitHeads(k, heads), vh = splitHeads(v, heads), gh = splitHeads(g, heads);
  const lq = qh.shape[2]!;
  const qc = Math.max(1, Math.min(chunk ?? lq, lq));
  const hc = Math.max(1, Math.min(headChunk ?? heads, heads));
  let token: Tensor | null = null;
  const after = (t: Tensor): Tensor => (token ? add(t, mul(token, 0)) : t);
  const gqHeads: Tensor[] = [], gkHeads: Tensor[] = [], gvHeads: Tensor[] = [];
  for (let h0 = 0; h0 < heads; h0 += hc) {
    const nh = Math.min(hc, heads - h0);
    const kc = narrow(kh, 1, h0, nh), vc = narrow(vh, 1, h0, nh);
    const gqRows: Tensor[] = [];
    let gk: Tensor | null = null, gv: Tensor | null = null;
    for (let q0 = 0; q0 < lq; q0 += qc) {
      const n = Math.min(qc, lq - q0);
      const qi = after(narrow(narrow(qh, 1, h0, nh), 2, q0, n));
      const gi = after(narrow(narrow(gh, 1, h0, nh), 2, q0, n));
      const p = softmax(mul(matmul(qi, mT(kc)), scale), -1);
      const gp = matmul(gi, mT(vc));
      const gs = mul(p, sub(gp, reduceSum(mul(gp, p), -1, true)));
      gqRows.push(mul(matmul(gs, kc), scale));
      const gki = mul(matmul(mT(gs), qi), scale), gvi = matmul(mT(p), gi);
      gk = gk ? add(gk, gki) : gki;
      gv = gv ? add(gv, gvi) : gvi;
      token = reshape(reduceSum(gk!, [0, 1, 2, 3]), []);
    }
    gqHeads.push(concat(gqRows, 2));
    gkHeads.push(gk!);
    gvHeads.push(gv!);
  }
  return [mergeHeads(concat(gqHeads, 1)), mergeHeads(concat(gkHeads, 1)), mergeHeads(concat(gvHeads, 1))];
}

/** Attention of q [B,Lq,C] over k [B,Lk,C], v [B,Lk,Cv] with `heads` heads; returns [B,Lq,Cv]. */
export function multiHeadAttention(q: Tensor, k: Tensor, v: Tensor, heads: number, opts: SdpaOptions = {}): Tensor {
  if (!opts.fused) return mergeHeads(sdpa(splitHeads(q, heads), splitHeads(k, heads), splitHeads(v, heads), opts));
  const d = (q.shape[2] ?? 0) / heads;
  const attrs: MhaAttrs = { heads, scale: opts.scale ?? 1 / Math.sqrt(d) };
  if (opts.chunk) attrs.chunk = opts.chunk;
  if (opts.headChunk) attrs.headChunk = opts.headChunk;
  return q.graph.apply(FusedMhaOp, [q, k, v], attrs);
}
