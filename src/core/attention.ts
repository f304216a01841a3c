/**
 * Scaled-dot-product attention, computed in chunks of queries (and optionally of heads) so the score matrix
 * that exists at any time is [B, headChunk, chunk, Lk] instead of [B, H, Lq, Lk]. For GS-LRM (24,578 tokens,
 * 16 heads) the full matrix would be 38.7 GB; one head-chunk of 16 × 1024 queries is 1.6 GB.
 * Composed from matmul/softmax, so its gradient comes from those ops' rules.
 */
import { GraphError, describe, type Tensor } from './graph.ts';
import { mul } from './ops/elementwise.ts';
import { matmul, softmax } from './ops/nn.ts';
import { concat, mT, narrow } from './ops/shape.ts';

export interface SdpaOptions {
  /** Multiplier of q·k (default 1/√d). */
  scale?: number;
  /** Queries per chunk (default: all). */
  chunk?: number;
  /** Heads per chunk (default: all). */
  headChunk?: number;
}

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
  // Scaling q (Lq·D values) is cheaper than scaling the scores (Lq·Lk).
  const qs = mul(q, opts.scale ?? 1 / Math.sqrt(d));
  const kT = mT(k);
  const perHead: Tensor[] = [];
  for (let h0 = 0; h0 < heads; h0 += headChunk) {
    const nh = Math.min(headChunk, heads - h0);
    const qh = narrow(qs, 1, h0, nh), kh = narrow(kT, 1, h0, nh), vh = narrow(v, 1, h0, nh);
    const rows: Tensor[] = [];
    for (let q0 = 0; q0 < lq; q0 += chunk) {
      const qc = narrow(qh, 2, q0, Math.min(chunk, lq - q0));
      rows.push(matmul(softmax(matmul(qc, kh), -1), vh));
    }
    perHead.push(concat(rows, 2));
  }
  return concat(perHead, 1);
}
