import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as C from './index.ts';
import { randn, rng } from './testing/reference.ts';

const snr = (ref: Float32Array, got: Float32Array) => {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (ref[i]! - got[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return 10 * Math.log10(den / num);
};

test('quantizeColumns: [in, out] int8 within ±63, one scale per output, error at most half a step', () => {
  const r = rng(3);
  const w = Float32Array.from(randn(r, 12 * 20), (v, i) => v * (1 + (i % 12)));
  const { q, scale } = C.quantizeColumns(w, 12, 20);
  assert.equal(q.length, 240);
  for (let o = 0; o < 12; o++) {
    let m = 0;
    for (let i = 0; i < 20; i++) {
      const v = q[i * 12 + o]!;
      assert.ok(Math.abs(v) <= C.INT8_WEIGHT_MAX);
      m = Math.max(m, Math.abs(v));
      assert.ok(Math.abs(v * scale[o]! - w[o * 20 + i]!) <= scale[o]! / 2 + 1e-7);
    }
    assert.equal(m, C.INT8_WEIGHT_MAX, 'the largest weight of each output uses the whole range');
  }
  assert.strictEqual(C.quantizedOf(w, 12, 20), C.quantizedOf(w, 12, 20), 'computed once per weight array');
});

test('int8 linear layers: the session reads int8 weights derived from the float32 parameter, near fp32', async () => {
  const r = rng(5);
  const g = new C.Graph('int8');
  const x = g.input('x', [2, 64, 256]);
  const h = C.gelu(C.linear(x, g.param('w1', [512, 256]), g.param('b1', [512])));
  const y = C.linear(h, g.param('w2', [128, 512]));
  const params = new Map([
    ['w1', Float32Array.from(randn(r, 512 * 256), (v) => v / 16)],
    ['b1', Float32Array.from(randn(r, 512), (v) => v / 10)],
    ['w2', Float32Array.from(randn(r, 128 * 512), (v) => v / 22)],
  ]);
  const feed = { x: Float32Array.from(randn(r, 2 * 64 * 256)) };
  const fp32 = await C.Session.create({ y }, { params, threads: 2 });
  const int8 = await C.Session.create({ y }, { params, threads: 2, int8: true });
  try {
    const names = int8.model.inputs.map((i) => `${i.name}:${i.dtype}:${i.shape.join('x')}`);
    assert.deepEqual(names.sort(), ['b1:float32:512', 'w1#int8:int8:256x512', 'w1#scale:float32:512',
      'w2#int8:int8:512x128', 'w2#scale:float32:128', 'x:float32:2x64x256'].sort(),
    'no float32 weight is bound by the int8 session');
    const a = (await fp32.run(feed)).y!.data as Float32Array;
    const b = (await int8.run(feed)).y!.data as Float32Array;
    const s = snr(a, b);
    assert.ok(s > 30 && s < 80, `two int8 layers: ${s.toFixed(1)} dB SNR`);
  } finally {
    await fp32.release();
    await int8.release();
  }
  // A weight that is not a parameter (computed in the graph) stays a float matmul; a missing one is named.
  const g2 = new C.Graph('computed');
  const w = C.mul(g2.param('w', [4, 8]), g2.scalar(2));
  const out = C.linear(g2.input('x', [3, 8]), w);
  const s2 = await C.Session.create({ out }, { params: new Map([['w', new Float32Array(32).fill(1)]]), int8: true });
  assert.deepEqual(s2.model.inputs.map((i) => i.name).sort(), ['w', 'x']);
  await s2.release();
  await assert.rejects(C.Session.create({ y }, { params: new Map([['w1', params.get('w1')!]]), int8: true }),
    /parameter\(s\) missing from the store: .*b1/);
});
