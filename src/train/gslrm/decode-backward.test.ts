import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trainingRig } from '../../cameras/rigs.ts';
import { decodeGaussians, GAUSSIAN_DIM } from '../../lrm/decode.ts';
import { computeRays } from '../../lrm/rays.ts';
import { decodeGaussiansBackward } from './decode-backward.ts';

test('decodeGaussiansBackward is the exact chain rule of decodeGaussians (central differences per raw value)', () => {
  const S = 16,
    nGlobal = 2;
  const rays = computeRays(trainingRig(S, 32).slice(0, 2));
  const count = nGlobal + 2 * S * S;
  let s = 7;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
  const raw = Float32Array.from({ length: count * GAUSSIAN_DIM }, rnd);
  // Some scales above the clamp (raw − 2.3 > −1.2): no gradient there.
  for (let i = 0; i < count; i += 7) raw[i * GAUSSIAN_DIM + 6] = 1.5;
  const w = {
    means: Float64Array.from({ length: 3 * count }, rnd),
    scales: Float64Array.from({ length: 3 * count }, rnd),
    rotations: Float64Array.from({ length: 4 * count }, rnd),
    opacities: Float64Array.from({ length: count }, rnd),
    sh: Float64Array.from({ length: 3 * count }, rnd),
  };
  const L = (r: Float32Array) => {
    const { gaussians: g } = decodeGaussians(r, nGlobal, rays, 8);
    let v = 0;
    for (const k of ['means', 'scales', 'rotations', 'opacities', 'sh'] as const)
      for (let i = 0; i < g[k].length; i++) v += w[k][i]! * g[k][i]!;
    return v;
  };
  const d = decodeGaussiansBackward(raw, nGlobal, rays, 8, {
    means: Float32Array.from(w.means),
    scales: Float32Array.from(w.scales),
    rotations: Float32Array.from(w.rotations),
    opacities: Float32Array.from(w.opacities),
    sh: Float32Array.from(w.sh),
  });
  const probe = [
    0,
    1,
    2,
    3,
    6,
    9,
    13,
    14 * 7 + 6,
    14 * 5 + 1,
    14 * 300,
    14 * 300 + 2,
    14 * 300 + 8,
    14 * 401 + 12,
    14 * 513 + 1,
  ];
  for (const i of probe) {
    const e = 1e-2,
      orig = raw[i]!;
    raw[i] = orig + e;
    const a = L(raw);
    raw[i] = orig - e;
    const b = L(raw);
    raw[i] = orig;
    const fd = (a - b) / (2 * e);
    assert.ok(
      Math.abs(fd - d[i]!) <= 1e-3 + 1e-3 * Math.abs(fd),
      `raw[${i}] (Gaussian ${Math.floor(i / 14)}, value ${i % 14}): analytic ${d[i]}, FD ${fd}`,
    );
  }
  assert.equal(d[7 * 14 + 6], 0, 'clamped log-scale passes no gradient');
});
