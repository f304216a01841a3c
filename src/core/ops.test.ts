// Forward numerics of every op against the float64 plain-TS reference (src/core/testing/reference.ts).
// Tolerance: |ort − ref| ≤ 1e-5 + 1e-4·|ref| (fp32) unless a case states otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as C from './index.ts';
import * as R from './testing/reference.ts';
import { assertClose, runCase } from './testing/check.ts';

const binaryCases: [string, (a: C.Tensor, b: C.Tensor) => C.Tensor, (x: number, y: number) => number][] = [
  ['add', C.add, (x, y) => x + y],
  ['sub', C.sub, (x, y) => x - y],
  ['mul', C.mul, (x, y) => x * y],
  ['div', C.div, (x, y) => x / y],
  ['minimum', C.minimum, Math.min],
  ['maximum', C.maximum, Math.max],
  ['pow', (a, b) => C.pow(C.add(C.abs(a), 0.5), b), (x, y) => (Math.abs(x) + 0.5) ** y],
  ['greater', (a, b) => C.cast(C.greater(a, b), 'float32'), (x, y) => +(x > y)],
  ['less', (a, b) => C.cast(C.less(a, b), 'float32'), (x, y) => +(x < y)],
  ['equal', (a, b) => C.cast(C.equal(C.clip(a, 0, 9), C.clip(b, 0, 9)), 'float32'), (x, y) => +(Math.max(x, 0) === Math.max(y, 0))],
];

for (const [name, op, f] of binaryCases) {
  test(`${name} with broadcasting [2,1,4] ∘ [3,1]`, async () => {
    const { out, refs } = await runCase({ inputs: { a: [2, 1, 4], b: [3, 1] } }, ({ a, b }) => op(a!, b!));
    assertClose(out, R.binary(refs.a!, refs.b!, f), 1e-5, 1e-4, name);
  });
}

test('scalar operands lift to the tensor dtype', async () => {
  const { out, refs } = await runCase({ inputs: { a: [3, 2] } }, ({ a }) => C.sub(C.mul(C.div(1, C.add(C.abs(a!), 1)), 2), 0.5));
  assertClose(out, R.unary(refs.a!, (x) => 2 / (Math.abs(x) + 1) - 0.5));
});

const unaryCases: [string, (a: C.Tensor) => C.Tensor, (x: number) => number][] = [
  ['neg', C.neg, (x) => -x],
  ['exp', C.exp, Math.exp],
  ['log', (a) => C.log(C.add(C.abs(a), 0.1)), (x) => Math.log(Math.abs(x) + 0.1)],
  ['sqrt', (a) => C.sqrt(C.abs(a)), (x) => Math.sqrt(Math.abs(x))],
  ['erf', C.erf, R.erf],
  ['tanh', C.tanh, Math.tanh],
  ['sigmoid', C.sigmoid, R.sigmoid],
  ['relu', C.relu, (x) => Math.max(x, 0)],
  ['cos', C.cos, Math.cos],
  ['sin', C.sin, Math.sin],
  ['silu', C.silu, (x) => x * R.sigmoid(x)],
  ['gelu (erf)', (a) => C.gelu(a), R.gelu],
  ['gelu (tanh)', (a) => C.gelu(a, 'tanh'), R.geluTanh],
  ['clip', (a) => C.clip(a, -0.5, 0.7), (x) => Math.min(Math.max(x, -0.5), 0.7)],
  ['where', (a) => C.where(C.greater(a, 0), a, C.mul(a, 0.1)), (x) => (x > 0 ? x : 0.1 * x)],
];
for (const [name, op, f] of unaryCases) {
  test(`${name} on [3,5]`, async () => {
    const { out, refs } = await runCase({ inputs: { a: [3, 5] }, scale: 2 }, ({ a }) => op(a!));
    assertClose(out, R.unary(refs.a!, f), 1e-5, 1e-4, name);
  });
}

test('matmul with broadcast batch dims [2,1,3,4] @ [3,4,5]', async () => {
  const { out, refs } = await runCase({ inputs: { a: [2, 1, 3, 4], b: [3, 4, 5] } }, ({ a, b }) => C.matmul(a!, b!));
  assertClose(out, R.matmul(refs.a!, refs.b!));
});

test('linear (FusedMatMul transB) with and without bias, fp32 and fp16', async () => {
  const c = await runCase({ inputs: { x: [2, 3, 4], w: [5, 4], b: [5] } }, ({ x, w, b }) => C.linear(x!, w!, b!));
  const want = R.binary(R.matmul(c.refs.x!, R.transpose(c.refs.w!, [1, 0])), c.refs.b!, (p, q) => p + q);
  assertClose(c.out, want);
  const h = await runCase({ inputs: { x: [3, 4], w: [5, 4] } }, ({ x, w }) => C.cast(C.linear(C.cast(x!, 'float16'), C.cast(w!, 'float16')), 'float32'));
  assertClose(h.out, R.matmul(h.refs.x!, R.transpose(h.refs.w!, [1, 0])), 1e-2, 1e-2);
});

test('softmax and logSoftmax on a middle axis', async () => {
  const s = await runCase({ inputs: { a: [2, 5, 3] }, scale: 3 }, ({ a }) => C.softmax(a!, 1));
  assertClose(s.out, R.softmax(s.refs.a!, 1));
  const l = await runCase({ inputs: { a: [2, 5, 3] }, scale: 3 }, ({ a }) => C.logSoftmax(a!, 1));
  assertClose(l.out, R.unary(R.softmax(l.refs.a!, 1), Math.log), 1e-5, 1e-4);
});

test('layerNorm with and without bias', async () => {
  const c = { inputs: { x: [2, 3, 8], w: [8], b: [8] } };
  const withB = await runCase(c, ({ x, w, b }) => C.layerNorm(x!, w!, b!, 1e-5));
  assertClose(withB.out, R.layerNorm(withB.refs.x!, withB.refs.w!, withB.refs.b!, 1e-5));
  const noB = await runCase(c, ({ x, w }) => C.layerNorm(x!, w!, null, 1e-6));
  assertClose(noB.out, R.layerNorm(noB.refs.x!, noB.refs.w!, null, 1e-6));
});

test('groupNorm affine and plain', async () => {
  const c = { inputs: { x: [2, 6, 3, 4], w: [6], b: [6] } };
  const aff = await runCase(c, ({ x, w, b }) => C.groupNorm(x!, w!, b!, 3, 1e-5));
  assertClose(aff.out, R.groupNorm(aff.refs.x!, aff.refs.w!, aff.refs.b!, 3, 1e-5));
  const plain = await runCase(c, ({ x }) => C.groupNorm(x!, null, null, 2, 1e-6));
  const ones = R.arr(new Array(6).fill(1), [6]), zeros = R.arr(new Array(6).fill(0), [6]);
  assertClose(plain.out, R.groupNorm(plain.refs.x!, ones, zeros, 2, 1e-6));
});

test('conv2d: stride 2, padding 1, groups 2, bias; and 1×1 without bias', async () => {
  const c = await runCase({ inputs: { x: [2, 4, 7, 6], w: [6, 2, 3, 3], b: [6] } }, ({ x, w, b }) => C.conv2d(x!, w!, b!, { stride: 2, padding: 1, groups: 2 }));
  assertClose(c.out, R.conv2d(c.refs.x!, c.refs.w!, c.refs.b!, 2, 1, 2));
  const p = await runCase({ inputs: { x: [1, 3, 4, 4], w: [5, 3, 1, 1] } }, ({ x, w }) => C.conv2d(x!, w!, null));
  assertClose(p.out, R.conv2d(p.refs.x!, p.refs.w!, null, 1, 0, 1));
});

test('nearest ×2 upsampling', async () => {
  const { out, refs } = await runCase({ inputs: { x: [1, 2, 3, 4] } }, ({ x }) => C.upsampleNearest2x(x!));
  assertClose(out, R.upsample2x(refs.x!), 0, 0);
});

/** Separable bilinear resize in float64, sampling at `map(o)` clamped to the input (the three ONNX conventions). */
function resizeRef(x: { data: ArrayLike<number>; shape: number[] }, h: number, w: number, mode: C.ResizeCoordinates) {
  const [n, c, hi, wi] = x.shape as [number, number, number, number];
  const src = (o: number, out: number, inp: number): number => {
    const f = mode === 'align_corners' ? (out > 1 ? (o * (inp - 1)) / (out - 1) : 0)
      : mode === 'half_pixel' ? ((o + 0.5) * inp) / out - 0.5 : (o * inp) / out;
    return Math.min(Math.max(f, 0), inp - 1);
  };
  const data = new Float64Array(n * c * h * w);
  for (let p = 0; p < n * c; p++) {
    for (let y = 0; y < h; y++) {
      const fy = src(y, h, hi), y0 = Math.floor(fy), y1 = Math.min(y0 + 1, hi - 1), ty = fy - y0;
      for (let xx = 0; xx < w; xx++) {
        const fx = src(xx, w, wi), x0 = Math.floor(fx), x1 = Math.min(x0 + 1, wi - 1), tx = fx - x0;
        const at = (yy: number, xq: number) => x.data[(p * hi + yy) * wi + xq]!;
        data[(p * h + y) * w + xx] = (at(y0, x0) * (1 - tx) + at(y0, x1) * tx) * (1 - ty)
          + (at(y1, x0) * (1 - tx) + at(y1, x1) * tx) * ty;
      }
    }
  }
  return { data, shape: [n, c, h, w] };
}

test('prelu: one slope per channel, 4-D and 2-D', async () => {
  for (const shape of [[2, 3, 4, 5], [4, 3]]) {
    const r = await runCase({ inputs: { x: shape, a: [3] } }, ({ x, a }) => C.prelu(x!, a!));
    const { data: xs } = r.refs.x!;
    const { data: as } = r.refs.a!;
    const inner = shape.slice(2).reduce((p, q) => p * q, 1);
    const want = Float64Array.from(xs, (v, i) => (v >= 0 ? v : v * as[Math.floor(i / inner) % 3]!));
    assertClose(r.out, { data: want, shape }, 1e-6, 1e-6, shape.join('×'));
  }
});

test('bilinear resize: half-pixel, align-corners and asymmetric coordinates, up and down', async () => {
  for (const mode of ['half_pixel', 'align_corners', 'asymmetric'] as const) {
    for (const [h, w] of [[10, 6], [3, 2]] as const) {
      const r = await runCase({ inputs: { x: [2, 3, 5, 4] } }, ({ x }) => C.resizeBilinear(x!, h, w, mode));
      assertClose(r.out, resizeRef(r.refs.x!, h, w, mode), 1e-5, 1e-5, `${mode} ${h}×${w}`);
    }
  }
});

test('reshape / transpose / concat / slice / split / pad / expand', async () => {
  const t = await runCase({ inputs: { x: [2, 3, 4] } }, ({ x }) => C.transpose(C.reshape(x!, [6, -1]), [1, 0]));
  assertClose(t.out, R.transpose({ data: t.refs.x!.data, shape: [6, 4] }, [1, 0]), 0, 0);
  const c = await runCase({ inputs: { x: [2, 3], u: [2, 2] } }, ({ x, u }) => C.concat([x!, u!, x!], 1));
  assertClose(c.out, R.concat([c.refs.x!, c.refs.u!, c.refs.x!], 1), 0, 0);
  const s = await runCase({ inputs: { x: [4, 5] } }, ({ x }) => C.slice(x!, [1, -3], [3, 5]));
  assertClose(s.out, R.slice(s.refs.x!, [1, 2], [3, 5], [0, 1]), 0, 0);
  const sp = await runCase({ inputs: { x: [2, 6] } }, ({ x }) => C.split(x!, [1, 2, 3], 1)[2]!);
  assertClose(sp.out, R.slice(sp.refs.x!, [3], [6], [1]), 0, 0);
  const p = await runCase({ inputs: { x: [2, 2] } }, ({ x }) => C.pad(x!, [0, 1, 1, 2], 0));
  const pe = R.arr([0, 0, 0, 0, 0, 0, ...[0, 0, 0, 0, 0]], [3, 5]);
  for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) pe.data[i * 5 + j + 1] = p.refs.x!.data[i * 2 + j]!;
  assertClose(p.out, pe, 0, 0);
  const e = await runCase({ inputs: { x: [3, 1] } }, ({ x }) => C.expand(x!, [2, 3, 4]));
  assertClose(e.out, R.binary(e.refs.x!, R.arr(new Array(24).fill(0), [2, 3, 4]), (a) => a), 0, 0);
});

test('gather along an axis with 2-D indices', async () => {
  const idx = [2, 0, 1, 2];
  const { out, refs } = await runCase({ inputs: { x: [2, 3, 4] } }, ({ x }, g) => C.gather(x!, g.constant(BigInt64Array.from(idx, BigInt), [2, 2]), 1));
  assertClose(out, R.gather(refs.x!, idx, [2, 2], 1), 0, 0);
});

test('reduceSum / reduceMean / reduceMax, keepdims on and off', async () => {
  const c = { inputs: { x: [2, 3, 4] } };
  const s = await runCase(c, ({ x }) => C.reduceSum(x!, [0, 2], true));
  assertClose(s.out, R.reduce(s.refs.x!, [0, 2], R.sum));
  const m = await runCase(c, ({ x }) => C.reduceMean(x!, -1));
  assertClose(m.out, R.reduce(m.refs.x!, [2], R.mean, false));
  const mx = await runCase(c, ({ x }) => C.reduceMax(x!, 1));
  assertClose(mx.out, R.reduce(mx.refs.x!, [1], R.max, false));
});

test('cast fp32 → fp16 → fp32 rounds like IEEE half', async () => {
  const { out, refs } = await runCase({ inputs: { x: [64] }, scale: 10 }, ({ x }) => C.cast(C.cast(x!, 'float16'), 'float32'));
  assertClose(out, R.unary(refs.x!, (v) => C.fromHalf(C.toHalf(v))), 0, 0);
});

test('chunked attention equals the reference, for several chunkings', async () => {
  const inputs = { q: [1, 3, 37, 8], k: [1, 3, 23, 8], v: [1, 3, 23, 5] };
  const variants: [number, number, C.SdpaOptions][] = [[37, 3, {}], [8, 1, {}], [5, 2, {}], [8, 2, { remat: true }], [16, 3, { fused: true }]];
  for (const [chunk, headChunk, extra] of variants) {
    const { out, refs } = await runCase({ inputs }, ({ q, k, v }) => C.sdpa(q!, k!, v!, { chunk, headChunk, ...extra }));
    assertClose(out, R.attention(refs.q!, refs.k!, refs.v!, 1 / Math.sqrt(8)), 1e-5, 1e-4, `chunk ${chunk}/${headChunk} ${JSON.stringify(extra)}`);
  }
});

test('multiHeadAttention on [B,L,C] (explicit and fused, Dv ≠ D) equals the reference', async () => {
  const inputs = { q: [2, 9, 12], k: [2, 7, 12], v: [2, 7, 6] };
  for (const opts of [{ chunk: 4 }, { fused: true }] as C.SdpaOptions[]) {
    const { out, refs } = await runCase({ inputs }, ({ q, k, v }) => C.multiHeadAttention(q!, k!, v!, 3, opts));
    const heads = (x: R.Arr) => R.transpose({ ...x, shape: [2, x.shape[1]!, 3, x.shape[2]! / 3] }, [0, 2, 1, 3]);
    const o = R.attention(heads(refs.q!), heads(refs.k!), heads(refs.v!), 0.5);
    assertClose(out, { ...R.transpose(o, [0, 2, 1, 3]), shape: [2, 9, 6] }, 1e-5, 1e-4, JSON.stringify(opts));
  }
});

test('chunked attention equals unchunked attention on a mid-size case (2×4 heads × 1000 tokens × 64)', async () => {
  const g = new C.Graph();
  const q = g.input('q', [2, 4, 1000, 64]), k = g.input('k', [2, 4, 1000, 64]), v = g.input('v', [2, 4, 1000, 64]);
  const r = R.rng(5);
  const feeds = { q: R.randn(r, 512000), k: R.randn(r, 512000), v: R.randn(r, 512000) };
  const res = await C.evaluate({
    full: C.sdpa(q, k, v), chunked: C.sdpa(q, k, v, { chunk: 96, headChunk: 3 }), remat: C.sdpa(q, k, v, { chunk: 300, remat: true }), fused: C.sdpa(q, k, v, { fused: true }),
  }, feeds);
  const a = res.full!.data as Float32Array;
  for (const name of ['chunked', 'remat', 'fused']) {
    const b = res[name]!.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
    assert.ok(worst < 1e-5, `max |full − ${name}| = ${worst}`);
  }
});
