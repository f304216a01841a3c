import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readGoldenSafetensors, f32, assertClose, assertGoldenGaussians } from './testing/golden.ts';
import { goldenCameras } from './testing/cameras.ts';
import { computeRays, posedInput } from './rays.ts';
import { patchify, pixelGaussianOrder } from './tokens.ts';
import { decodeGaussians } from './decode.ts';

const inputs = await readGoldenSafetensors('inputs.safetensors');
const inter = await readGoldenSafetensors('intermediates.safetensors');
const gauss = await readGoldenSafetensors('gaussians.safetensors');
const cameras = goldenCameras(inputs);
const rays = computeRays(cameras);

test('ray directions and the 9-channel posed input match the golden intermediates', () => {
  assertClose(rays.directions, f32(inter, 'ray_d'), 1e-5, 0, 'ray_d');
  assertClose(posedInput(f32(inputs, 'image'), rays), f32(inter, 'posed_input'), 1e-5, 0, 'posed_input');
});

test('patchify puts (py·8 + px)·9 + c inside a token, tokens view-major then row-major', () => {
  const V = 4, C = 9, H = 32, W = 32, p = 8;
  const x = new Float32Array(V * C * H * W).map((_, i) => i);
  const t = patchify(x, V, C, H, W, p);
  assert.equal(t.length, V * 16 * 576);
  // token (v=2, patch row 1, patch col 3), py 5, px 6, channel 4 → pixel (y 13, x 30)
  const token = 2 * 16 + 1 * 4 + 3;
  assert.equal(t[token * 576 + (5 * 8 + 6) * 9 + 4], ((2 * C + 4) * H + 13) * W + 30);
});

test('Gaussian order: 2 global, then view, patch row, patch col, py, px', () => {
  const order = pixelGaussianOrder(4, 32, 32, 8);
  // README §2.2.6: index of (v, y, x) is v·H·W + ((⌊y/8⌋·4 + ⌊x/8⌋)·8 + y mod 8)·8 + x mod 8 (minus the 2 global).
  for (const [v, y, x] of [[0, 0, 0], [1, 9, 17], [3, 31, 31], [2, 7, 8]]) {
    const j = v * 1024 + ((Math.floor(y / 8) * 4 + Math.floor(x / 8)) * 8 + (y % 8)) * 8 + (x % 8);
    assert.equal(order[j], v * 1024 + y * 32 + x);
  }
  assert.equal(new Set(order).size, order.length, 'a permutation');
});

test('decoding the golden raw Gaussians reproduces xyz, scaling, rotation, opacity, SH and pixel t', () => {
  const raw = f32(gauss, 'gaussians_raw');
  const { gaussians: g, pixelT } = decodeGaussians(raw, 2, rays, 8);
  assert.equal(g.count, 4098);
  assertGoldenGaussians(g, pixelT, gauss);
  const rn = new Float32Array(g.rotations.length);
  for (let i = 0; i < g.count; i++) {
    const q = g.rotations.subarray(4 * i, 4 * i + 4);
    const n = Math.hypot(q[0], q[1], q[2], q[3]);
    for (let k = 0; k < 4; k++) rn[4 * i + k] = q[k] / n;
  }
  assertClose(rn, f32(gauss, 'rotation_normalized'), 1e-4, 0, 'rotation_normalized');
  // pixelalign_xyz is image layout [V,3,H,W]: the same positions, reached through the pixel order.
  const order = pixelGaussianOrder(4, 32, 32, 8);
  const img = new Float32Array(4 * 3 * 1024);
  order.forEach((pix, j) => {
    const v = Math.floor(pix / 1024), i = pix % 1024;
    for (let c = 0; c < 3; c++) img[(v * 3 + c) * 1024 + i] = g.means[3 * (2 + j) + c];
  });
  assertClose(img, f32(gauss, 'pixelalign_xyz'), 1e-4, 0, 'pixelalign_xyz');
});
