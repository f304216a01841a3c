import { test } from 'node:test';
import assert from 'node:assert/strict';
import { orbitCamera, type Camera } from '../cameras/camera.ts';
import { allocGaussians, type GaussianSet } from './gaussians.ts';
import { rasterize, rasterizeBackward } from './rasterize.ts';
import { SplatRenderer } from './renderer.ts';
import { referenceRender } from './testing/reference.ts';
import { rng } from './testing/scene.ts';

function randomScene(n: number, seed: number, shDegree = 0, scale: [number, number] = [0.03, 0.15]): GaussianSet {
  const r = rng(seed);
  const g = allocGaussians(n, shDegree);
  const K = (shDegree + 1) ** 2;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) g.means[3 * i + k] = (r() * 2 - 1) * 0.9;
    for (let k = 0; k < 3; k++) g.scales[3 * i + k] = Math.log(scale[0] + (scale[1] - scale[0]) * r());
    for (let k = 0; k < 4; k++) g.rotations[4 * i + k] = r() * 2 - 1;
    g.opacities[i] = r() * 5 - 2.5;
    for (let k = 0; k < 3 * K; k++) g.sh[3 * K * i + k] = (r() * 2 - 1) * (k < 3 ? 1.5 : 0.3);
  }
  return g;
}

/** An orbit camera with a non-square image and an off-centre principal point. */
function offCentre(width: number, height: number, az: number): Camera {
  const c = orbitCamera({ azimuthDeg: az, elevationDeg: 12, radius: 2.7, fovDeg: 50, width, height });
  return { ...c, fy: c.fy * 0.93, cx: c.cx + 2.3, cy: c.cy - 1.7 };
}

test('dense mode equals a naive per-pixel renderer on non-square images (37×23, 70×41), n_blended exact', () => {
  for (const [w, h, seed] of [[37, 23, 1], [70, 41, 2]]) {
    const g = randomScene(120, seed);
    const cam = offCentre(w, h, 30 * seed);
    const got = rasterize(g, cam, { tileCull: false });
    const ref = referenceRender(g, cam);
    let d = 0;
    for (let i = 0; i < ref.rgb.length; i++) d = Math.max(d, Math.abs(got.rgb[i] - ref.rgb[i]));
    assert.ok(d < 2e-5, `${w}×${h}: max |Δrgb| ${d}`);
    assert.deepEqual(Array.from(got.nBlended), Array.from(ref.n));
    for (let i = 0; i < ref.T.length; i++) assert.ok(Math.abs(1 - got.alpha[i] - ref.T[i]) < 2e-5);
  }
});

test('Gaussians behind the camera or inside the near plane: no effect on the image and zero gradient', () => {
  const cam = offCentre(40, 30, 0);
  const g = randomScene(30, 7);
  // camera at azimuth 0 sits on +X at (≈2.64, 0, 0.56): put every Gaussian behind it or within 0.2 of it
  for (let i = 0; i < g.count; i++) {
    const behind = i % 2 === 0;
    g.means.set(behind ? [3.5 + (i % 5) * 0.1, (i % 3) * 0.1, 0.5] : [2.55, 0, 0.55], 3 * i);
  }
  const img = rasterize(g, cam);
  assert.ok(img.rgb.every((v) => v === 1) && img.alpha.every((v) => v === 0) && img.nBlended.every((v) => v === 0));
  const gr = rasterizeBackward(g, cam, { dRgb: new Float32Array(3 * 40 * 30).fill(1), dAlpha: new Float32Array(40 * 30).fill(1) });
  for (const k of ['means', 'scales', 'rotations', 'opacities', 'sh'] as const) assert.ok(gr[k].every((v) => v === 0), k);
});

test('empty scene renders the background; background colour is honoured', () => {
  const cam = offCentre(33, 17, 0);
  const img = rasterize(allocGaussians(0), cam, { background: [0.25, 0.5, 0] });
  const n = 33 * 17;
  assert.ok(img.rgb.subarray(0, n).every((v) => v === 0.25) && img.rgb.subarray(n, 2 * n).every((v) => v === 0.5) && img.rgb.subarray(2 * n).every((v) => v === 0));
  assert.ok(img.alpha.every((v) => v === 0));
  const gr = rasterizeBackward(allocGaussians(0), cam, { dRgb: new Float32Array(3 * n) });
  assert.equal(gr.means.length, 0);
  assert.throws(() => rasterizeBackward(allocGaussians(0), cam, { dRgb: new Float32Array(5) }), /dRgb has 5 values/);
});

test('finite differences: every parameter type incl. SH degree 3 and the FOV clamp, with dL/drgb and dL/dalpha', () => {
  // Large Gaussians on a small image: the alpha = 1/255 contours and 3σ rectangles lie outside the image, and
  // transmittance stays far above 1e-4, so the loss is smooth in every parameter.
  const g = randomScene(6, 11, 3, [0.7, 1.1]);
  for (let i = 0; i < 3 * g.count; i++) g.means[i] *= 0.5;
  for (let i = 0; i < g.count; i++) g.opacities[i] = Math.min(g.opacities[i], 1.5);
  g.means.set([1.2, -1.6, 0.3], 0); // far to the side of camera 0: Jacobian clamp active
  const cam = orbitCamera({ azimuthDeg: 270, elevationDeg: 5, radius: 2.7, fovDeg: 50, width: 14, height: 11 });
  const r = rng(99);
  const n = 14 * 11;
  const W = Float32Array.from({ length: 3 * n }, () => r() * 2 - 1), Wa = Float32Array.from({ length: n }, () => r() * 2 - 1);
  const loss = (gs: GaussianSet) => {
    const img = rasterize(gs, cam, { tileCull: false });
    let L = 0;
    for (let i = 0; i < 3 * n; i++) L += img.rgb[i] * W[i];
    for (let i = 0; i < n; i++) L += img.alpha[i] * Wa[i];
    return L;
  };
  const grads = rasterizeBackward(g, cam, { dRgb: W, dAlpha: Wa }, { tileCull: false });
  // precondition of smoothness: every Gaussian is blended at every pixel
  assert.ok(grads.image.nBlended.every((v) => v === g.count));
  let checked = 0;
  for (const key of ['means', 'scales', 'rotations', 'opacities', 'sh'] as const) {
    const arr = g[key];
    const idx = key === 'sh' ? [0, 1, 2, 5, 10, 25, 47, 48, 100, 150] : Array.from({ length: arr.length }, (_, i) => i);
    for (const i of idx) {
      const orig = arr[i];
      const eps = 2e-3 * Math.max(1, Math.abs(orig));
      arr[i] = orig + eps; const hi = arr[i]; const lp = loss(g);
      arr[i] = orig - eps; const lo = arr[i]; const lm = loss(g);
      arr[i] = orig;
      const fd = (lp - lm) / (hi - lo);
      const an = grads[key][i];
      const err = Math.abs(fd - an) / (Math.abs(fd) + Math.abs(an) + 0.05);
      assert.ok(err < 2e-3, `${key}[${i}]: finite difference ${fd} vs analytic ${an}`);
      checked++;
    }
  }
  assert.ok(checked > 60);
});

test('SplatRenderer on 2 worker threads, Morton-reordered scene: same image as rasterize (non-square 150×90), backward agrees in the caller order, frames in order', async () => {
  const g = randomScene(3000, 21, 1, [0.01, 0.05]);
  const cam = offCentre(150, 90, 200);
  const r = await SplatRenderer.create({ threads: 2, minParallelPixels: 0, reorderFrom: 0 });
  try {
    await r.setScene(g);
    const [a, a2] = await Promise.all([r.render(cam), r.render(offCentre(150, 90, 20))]); // concurrent calls are serialised
    const b = rasterize(g, cam);
    assert.deepEqual(a.rgb, b.rgb);
    assert.deepEqual(a2.rgb, rasterize(g, offCentre(150, 90, 20)).rgb);
    assert.deepEqual(a.nBlended, b.nBlended);
    const dRgb = Float32Array.from({ length: 3 * 150 * 90 }, (_, i) => Math.sin(i));
    const ga = await r.backward(cam, { dRgb }), gb = rasterizeBackward(g, cam, { dRgb });
    for (const k of ['means', 'scales', 'rotations', 'opacities', 'sh'] as const) {
      let m = 0, d = 0;
      for (let i = 0; i < gb[k].length; i++) { m = Math.max(m, Math.abs(gb[k][i])); d = Math.max(d, Math.abs(ga[k][i] - gb[k][i])); }
      assert.ok(d <= 1e-5 * m, `${k}: ${d} vs max ${m}`);
    }
    const cams = [0, 60, 120, 180, 240].map((az) => offCentre(48, 32, az));
    const seen: number[] = [];
    await r.renderFrames(cams, {}, (i, img) => {
      seen.push(i);
      assert.deepEqual(img.rgb, rasterize(g, cams[i]).rgb);
    });
    assert.deepEqual(seen, [0, 1, 2, 3, 4]);
  } finally {
    await r.close();
  }
});

test('colour-only frames: the same rgb and alpha as full renders, without the depth/count planes, on workers and on one thread', async () => {
  const g = randomScene(2000, 33, 1, [0.01, 0.05]);
  const cams = [0, 90, 200].map((az) => offCentre(64, 40, az));
  for (const threads of [1, 2]) {
    const r = await SplatRenderer.create({ threads });
    try {
      await r.setScene(g);
      const seen: number[] = [];
      await r.renderFrames(cams, { colorOnly: true, background: [0.2, 0.5, 0.9] }, (i, img) => {
        seen.push(i);
        const full = rasterize(g, cams[i], { background: [0.2, 0.5, 0.9] });
        assert.deepEqual(img.rgb, full.rgb);
        assert.deepEqual(img.alpha, full.alpha);
        assert.ok(!('depth' in img) && !('nBlended' in img), 'colour-only frames carry no depth or counts');
      });
      assert.deepEqual(seen, [0, 1, 2]);
    } finally {
      await r.close();
    }
  }
});
