/**
 * Scaled-dot-product attention, computed in chunks of queries (and optionally of heads) so the score matrix
 * that exists at any time is [B, headChunk, chunk, Lk] instead of [B, H, Lq, Lk]. For GS-LRM (24,578 tokens,
 * 16 heads) the full matrix would be 38.7 GB; 4 heads × 2048 queries is 0.8 GB.
 *
 * Two ways to build each chunk:
 * - composite (default): matmul → softmax → matmul from the op table; autodiff keeps each chunk's softmax
 *   output for the backward pass (fastest; memory grows with Lq·Lk when training).
 * - block (`remat` or `fused`): one `sdpaBlock` node per chunk whose gradient rule recomputes the chunk's
 *   scores, so the backward holds one chunk at a time. Its forward lowers either to the explicit ONNX nodes or,
 *   with `fused`, to ONNX opset-23 `Attention`.
 */
import { GraphError, defineOp, describe, isFloat, type OpDef, type Tensor } from './graph.ts';
import { A } from './attrs.ts';
import { mul, sub } from './ops/elementwise.ts';
import { matmul, softmax } from './ops/nn.ts';
import { concat, mT, narrow, reduceSum } from './ops/shape.ts';

export interface SdpaOptions {
  /** Multiplier of q·k (default 1/√d). */
  scale?: number;
  /** Queries per chunk (default: all). */
  chunk?: number;
  /** Heads per chunk (default: all). */
  headChunk?: number;
  /** Recompute each chunk's scores in the backward pass instead of keeping them (bounded training memory). */
  remat?: boolean;
  /** Lower each chunk to ONNX `Attention` (opset 23) instead of explicit MatMul/Softmax nodes; implies a block node. */
  fused?: boolean;
}

interface BlockAttrs { scale: number; fused: boolean }

/** One attention block softmax(q kᵀ·scale) v as a single node, differentiated by recomputation. */
export const SdpaBlockOp: OpDef<BlockAttrs> = defineOp({
  name: 'sdpaBlock',
  infer: ([q, k, v]) => {
    if (!isFloat(q!.dtype) || q!.dtype !== k!.dtype || k!.dtype !== v!.dtype) throw new Error('needs float inputs of one dtype');
    return { shape: [...q!.shape.slice(0, 3), v!.shape[3]!], dtype: q!.dtype };
  },
  lower: (b, [q, k, v], { scale, fused }, { out }) => {
    if (fused) return b.node('Attention', [q!, k!, v!], { scale: A.f(scale) });
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

/** softmax(q kᵀ · scale) v for q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv] → [B,H,Lq,Dv]. */
export function sdpa(q: Tensor, k: Tensor, v: Tensor, opts: SdpaOptions = {}): Tensor {
  const bad = q.rank !== 4 || k.rank !== 4 || v.rank !== 4
    || q.shape[0] !== k.shape[0] || k.shape[0] !== v.shape[0]
    || q.shape[1] !== k.shape[1] || k.shape[1] !== v.shape[1]
    || q.shape[3] !== k.shape[3] || k.shape[2] !== v.shape[2];
  if (bad) throw new GraphError(`sdpa: expected q [B,H,Lq,D], k [B,H,Lk,D], v [B,H,Lk,Dv] (inputs: ${[q, k, v].map(describe).join(', ')})`);
  const [, heads, lq, d] = q.shape as [number, number, number, number];
  const chunk = Math.max(1, Math.min(opts.chunk ?? lq, lq));
  const headChunk = Math.max(1, Math.min(opts.headChunk ?? heads, heads));
  const scale = opts.scale ?? 1 / Math.sqrt(d);
  const block = opts.remat || opts.fused;
  // Scaling q (Lq·D values) is cheaper than scaling the scores (Lq·Lk).
  const qs = block ? q : mul(q, scale);
  const kT = block ? k : mT(k);
  const perHead: Tensor[] = [];
  for (let h0 = 0; h0 < heads; h0 += headChunk) {
    const nh = Math.min(headChunk, heads - h0);
    const qh = narrow(qs, 1, h0, nh), kh = narrow(kT, 1, h0, nh), vh = narrow(v, 1, h0, nh);
    const rows: Tensor[] = [];
    for (let q0 = 0; q0 < lq; q0 += chunk) {
      const qc = narrow(qh, 2, q0, Math.min(chunk, lq - q0));
      rows.push(block
        ? q.graph.apply(SdpaBlockOp, [qc, kh, vh], { scale, fused: !!opts.fused })
        : matmul(softmax(matmul(qc, kh), -1), vh));
    }
    perHead.push(concat(rows, 2));
  }
  return concat(perHead, 1);
}
