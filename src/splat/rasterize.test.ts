import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binGaussians, rasterize, rasterizeBackward } from './rasterize.ts';
import { camParams } from './project.ts';
import { allocTileScratch, sortTile } from './tiles.ts';
import { GOLDEN, f32, goldenCameras, maxAbs, maxAbsDiff, readAll, sceneFrom } from './testing/golden.ts';

const dir = GOLDEN + 'render-tiny/';
const scene = await readAll(dir + 'scene.safetensors');
const ref = await readAll(dir + 'render.safetensors');
const grads = await readAll(dir + 'grads.safetensors');
const g = sceneFrom(scene);
const [H, W] = [40, 48];
const cams = goldenCameras(f32(scene, 'c2w'), f32(scene, 'fxfycxcy'), W, H);
const lossW = f32(scene, 'loss_weight');
const plane = 3 * H * W;

for (const variant of ['tile16', 'dense'] as const) {
  const tileCull = variant === 'tile16';
  const sfx = tileCull ? '_tile16' : '';
  test(`render-tiny ${variant}: image, loss${tileCull ? '' : ', T_final, n_blended, terminated'}`, () => {
    const want = f32(ref, 'render' + sfx);
    let loss = 0;
    for (let v = 0; v < 2; v++) {
      const img = rasterize(g, cams[v], { tileCull });
      const d = maxAbsDiff(img.rgb, want.subarray(v * plane, (v + 1) * plane));
      assert.ok(d.max <= 2e-5, `camera ${v}: render differs by ${d.max} at ${d.at}`);
      for (let i = 0; i < plane; i++) loss += img.rgb[i] * lossW[v * plane + i];
      if (!tileCull) {
        const n = H * W;
        const T = Float32Array.from(img.alpha, (a) => 1 - a);
        const dT = maxAbsDiff(T, f32(ref, 'T_final').subarray(v * n, (v + 1) * n));
        assert.ok(dT.max <= 2e-5, `camera ${v}: T_final differs by ${dT.max}`);
        assert.deepEqual(Array.from(img.nBlended), Array.from((ref.get('n_blended') as Int32Array).subarray(v * n, (v + 1) * n)));
        assert.deepEqual(Array.from(img.terminated), Array.from((ref.get('terminated') as Uint8Array).subarray(v * n, (v + 1) * n)));
      }
    }
    const wantLoss = f32(ref, 'loss' + sfx)[0];
    assert.ok(Math.abs(loss - wantLoss) <= 1e-5 * Math.abs(wantLoss), `loss ${loss} vs ${wantLoss}`);
  });

  test(`render-tiny ${variant}: every gradient within 1e-4·max`, () => {
    const pre = tileCull ? 'tile16.' : '';
    const sum = { means: new Float64Array(900), scales: new Float64Array(900), rotations: new Float64Array(1200), opacities: new Float64Array(300), sh: new Float64Array(900), cuda: new Float64Array(900) };
    for (let v = 0; v < 2; v++) {
      const up = { dRgb: lossW.subarray(v * plane, (v + 1) * plane) };
      const r = rasterizeBackward(g, cams[v], up, { tileCull });
      const rc = rasterizeBackward(g, cams[v], up, { tileCull, cudaJacobian: true });
      for (const k of ['means', 'scales', 'rotations', 'opacities', 'sh'] as const) r[k].forEach((x, i) => (sum[k][i] += x));
      rc.means.forEach((x, i) => (sum.cuda[i] += x));
    }
    const pairs: Array<[string, Float64Array]> = [
      ['grad_xyz', sum.means], ['grad_scaling', sum.scales], ['grad_rotation', sum.rotations],
      ['grad_opacity', sum.opacities], ['grad_features_dc', sum.sh], ['cudajac.grad_xyz', sum.cuda],
    ];
    for (const [name, got] of pairs) {
      const want = f32(grads, pre + name);
      const d = maxAbsDiff(got, want);
      assert.ok(d.max <= 1e-4 * maxAbs(want), `${pre}${name}: max |Δ| ${d.max} at ${d.at} (ref max ${maxAbs(want)})`);
    }
  });
}

test('gslrm-tiny: render_tile16 and the dense render, T_final, n_blended of the decoded Gaussians at the 4 input cameras', async () => {
  const gdir = GOLDEN + 'gslrm-tiny/';
  const gs = await readAll(gdir + 'gaussians.safetensors');
  const inputs = await readAll(gdir + 'inputs.safetensors');
  const rend = await readAll(gdir + 'render.safetensors');
  const want = f32(rend, 'render_tile16');
  const risk = f32(rend, 'render_risk');
  const set = sceneFrom(gs);
  const cams4 = goldenCameras(f32(inputs, 'c2w'), f32(inputs, 'fxfycxcy'), 32, 32);
  const n = 32 * 32;
  for (let v = 0; v < 4; v++) {
    const img = rasterize(set, cams4[v]);
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < n; p++) {
        const got = img.rgb[c * n + p], ref = want[(v * 3 + c) * n + p];
        assert.ok(Math.abs(got - ref) <= 1e-3 + risk[v * n + p], `view ${v} channel ${c} pixel ${p}: ${got} vs ${ref}`);
      }
    }
    const dense = rasterize(set, cams4[v], { tileCull: false });
    const wantDense = f32(rend, 'render'), wantT = f32(rend, 'render_T_final'), wantN = rend.get('render_n_blended') as Int32Array;
    for (let p = 0; p < n; p++) {
      const tol = 2e-4 + risk[v * n + p];
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(dense.rgb[c * n + p] - wantDense[(v * 3 + c) * n + p]) <= tol, `dense view ${v} pixel ${p}`);
      assert.ok(Math.abs(1 - dense.alpha[p] - wantT[v * n + p]) <= tol, `T_final view ${v} pixel ${p}`);
      if (risk[v * n + p] === 0) assert.equal(dense.nBlended[p], wantN[v * n + p], `n_blended view ${v} pixel ${p}`);
    }
  }
});

test('render-tiny preprocessing: mean2d, depth, conic, 3σ radius, and per-tile order = the reference sort_order', async () => {
  const pre = await readAll(dir + 'preprocess.safetensors');
  const valid = pre.get('valid') as Uint8Array, radius = pre.get('radius') as Int32Array, order = pre.get('sort_order') as BigInt64Array;
  const mean2d = f32(pre, 'mean2d'), depth = f32(pre, 'depth'), conic = f32(pre, 'conic');
  let compared = 0;
  for (let v = 0; v < 2; v++) {
    const cam = camParams(cams[v]);
    const { P, tileStart, ids } = binGaussians(g, cam, true);
    const conicMax = maxAbs(conic.subarray(v * 900, (v + 1) * 900));
    for (let i = 0; i < 300; i++) {
      const k = v * 300 + i;
      if (!valid[k]) { assert.equal(P.radius[i], 0, `camera ${v}: Gaussian ${i} is behind the near plane`); continue; }
      assert.ok(Math.abs(P.depth[i] - depth[k]) <= 1e-5 * depth[k]);
      if (P.radius[i] === 0) continue; // off-screen: empty tile rectangle
      compared++;
      assert.equal(P.radius[i], radius[k], `camera ${v}: radius of Gaussian ${i}`);
      assert.ok(Math.abs(P.proj[12 * i] - mean2d[2 * k]) <= 1e-4 && Math.abs(P.proj[12 * i + 1] - mean2d[2 * k + 1]) <= 1e-4);
      for (let c = 0; c < 3; c++) {
        const ref = conic[3 * k + c];
        assert.ok(Math.abs(P.proj[12 * i + 2 + c] - ref) <= 1e-5 * conicMax + 1e-4 * Math.abs(ref), `conic ${i}.${c}`);
      }
    }
    // within every tile the depth sort must reproduce the reference's (stable) global order
    const rank = new Int32Array(300);
    for (let r = 0; r < 300; r++) rank[Number(order[v * 300 + r])] = r;
    // binGaussians sorts globally; sortTile (the tile-parallel path) must give the same order from index order
    const s = allocTileScratch();
    for (let t = 0; t < cam.tilesX * cam.tilesY; t++) {
      for (let k = tileStart[t] + 1; k < tileStart[t + 1]; k++) assert.ok(rank[ids[k - 1]] < rank[ids[k]], `tile ${t} out of order`);
      const list = ids.slice(tileStart[t], tileStart[t + 1]);
      const shuffled = list.slice().sort((a, b) => a - b);
      sortTile(shuffled, 0, shuffled.length, P.depth, s);
      assert.deepEqual(shuffled, list);
    }
  }
  assert.ok(compared > 400);
});
