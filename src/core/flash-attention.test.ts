// The host-driven flash attention against the composite graph (one softmax over all keys, autodiff's backward):
// forward output, log-sum-exp and all three gradients, with blocks that do and do not divide the sequence.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as C from './index.ts';
import { FlashAttention } from './flash-attention.ts';
import { randn, rng } from './testing/reference.ts';

function maxRelErr(a: Float32Array, b: Float32Array): number {
  let worst = 0,
    scale = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst / scale;
}

async function composite(
  n: number,
  lq: number,
  lk: number,
  d: number,
  dv: number,
  scale: number,
  data: Record<string, Float32Array>,
) {
  const g = new C.Graph();
  const q = g.input('q', [1, n, lq, d]),
    k = g.input('k', [1, n, lk, d]),
    v = g.input('v', [1, n, lk, dv]);
  const o = C.sdpa(q, k, v, { scale });
  const s = C.mul(C.matmul(q, C.mT(k)), scale);
  const lse = C.add(C.reduceMax(s, -1), C.log(C.reduceSum(C.exp(C.sub(s, C.reduceMax(s, -1, true))), -1)));
  const { grads } = C.vjpInput(o, [q, k, v], 'dO');
  return C.evaluate({ o, lse, dq: grads[0]!, dk: grads[1]!, dv: grads[2]! }, data);
}

for (const [n, lq, lk, d, dv, chunk] of [
  [3, 37, 29, 8, 8, 16],
  [2, 24, 24, 4, 6, 8],
  [1, 5, 11, 3, 3, 64],
] as const) {
  test(`flash attention = composite (N ${n}, Lq ${lq}, Lk ${lk}, D ${d}, Dv ${dv}, blocks of ${chunk})`, async () => {
    const r = rng(7 + lq);
    const data = {
      q: randn(r, n * lq * d, 1.5),
      k: randn(r, n * lk * d, 1.5),
      v: randn(r, n * lk * dv),
      dO: randn(r, n * lq * dv),
    };
    const scale = 0.7 / Math.sqrt(d);
    const want = await composite(n, lq, lk, d, dv, scale, data);
    const fa = await FlashAttention.create({ n, lq, lk, d, dv }, { chunk, scale, threads: 1 });
    try {
      const fwd = await fa.forward(data.q, data.k, data.v);
      assert.ok(maxRelErr(fwd.o, want.o!.data as Float32Array) < 1e-5, 'o');
      assert.ok(maxRelErr(fwd.lse, want.lse!.data as Float32Array) < 1e-5, 'lse');
      // Twice into the same buffers: accumulation over blocks must restart on every call.
      const into = {
        dq: new Float32Array(n * lq * d),
        dk: new Float32Array(n * lk * d),
        dv: new Float32Array(n * lk * dv),
      };
      for (let rep = 0; rep < 2; rep++) {
        const gr = await fa.backward(data.q, data.k, data.v, fwd, data.dO, into);
        assert.equal(gr.dq, into.dq);
        for (const key of ['dq', 'dk', 'dv'] as const) {
          const err = maxRelErr(gr[key], want[key]!.data as Float32Array);
          assert.ok(err < 2e-5, `${key}: relative error ${err}`);
        }
      }
    } finally {
      await fa.release();
    }
  });
}

test('flash attention names a wrongly sized input', async () => {
  const fa = await FlashAttention.create({ n: 1, lq: 4, lk: 4, d: 2 }, { threads: 1 });
  try {
    await assert.rejects(
      fa.forward(new Float32Array(8), new Float32Array(7), new Float32Array(8)),
      /k has 7 values, expected 8/,
    );
  } finally {
    await fa.release();
  }
  await assert.rejects(FlashAttention.create({ n: 1, lq: 0, lk: 4, d: 2 }), /lq must be a positive integer/);
});
