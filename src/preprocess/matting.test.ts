import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '../util/errors.ts';
import { IMAGENET_MEAN, IMAGENET_STD, OnnxMatter, modnetSize, u2netInput } from './matting.ts';
import type { RawImage } from './image.ts';
import { tinyOnnx } from './testing/tiny-onnx.ts';

let dir = '';
const W = [0.7, -1.3, 0.4];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'facelift-matting-'));
  const weight = { name: 'w', dims: [1, 3, 1, 1], data: Float32Array.from(W) };
  // u2net stand-in: |1×1 conv| as the first of two outputs (the real u2net has seven; rembg takes the first).
  await writeFile(join(dir, 'u2net.onnx'), tinyOnnx({
    inputs: [{ name: 'input.1', dims: [1, 3, 320, 320] }],
    outputs: [{ name: 'd0', dims: [1, 1, 320, 320] }, { name: 'd1', dims: [1, 1, 320, 320] }],
    initializers: [weight],
    nodes: [{ op: 'Conv', inputs: ['input.1', 'w'], outputs: ['d1'] }, { op: 'Abs', inputs: ['d1'], outputs: ['d0'] }],
  }));
  // u2net stand-in that sums channels: bright pixels → high, black → low (after min-max).
  await writeFile(join(dir, 'u2net-sum.onnx'), tinyOnnx({
    inputs: [{ name: 'input.1', dims: [1, 3, 320, 320] }],
    outputs: [{ name: 'd0', dims: [1, 1, 320, 320] }],
    initializers: [{ name: 'w', dims: [1, 3, 1, 1], data: Float32Array.from([1, 1, 1]) }],
    nodes: [{ op: 'Conv', inputs: ['input.1', 'w'], outputs: ['d0'] }],
  }));
  // MODNet stand-in: sigmoid(1×1 conv), dynamic spatial size.
  await writeFile(join(dir, 'modnet.onnx'), tinyOnnx({
    inputs: [{ name: 'input', dims: [1, 3, 'h', 'w'] }],
    outputs: [{ name: 'output', dims: [1, 1, 'h', 'w'] }],
    initializers: [weight],
    nodes: [{ op: 'Conv', inputs: ['input', 'w'], outputs: ['c'] }, { op: 'Sigmoid', inputs: ['c'], outputs: ['output'] }],
  }));
});

after(async () => { await rm(dir, { recursive: true, force: true }); });

function gradient(w: number, h: number): RawImage & { channels: 3 } {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 3 * (y * w + x);
      data[i] = Math.floor((x * 200) / w);
      data[i + 1] = Math.floor((y * 180) / h);
      data[i + 2] = (x * 7 + y * 3) % 211;
    }
  }
  return { data, width: w, height: h, channels: 3 };
}

test('u2net input: divide by the image max, ImageNet mean/std, NCHW (320² input is not resampled)', async () => {
  const img = gradient(320, 320);
  const { data, width, height } = await u2netInput(img);
  assert.equal(width, 320);
  assert.equal(height, 320);
  const max = img.data.reduce((a, b) => Math.max(a, b), 0);
  assert.ok(max < 255, 'the test image must not reach 255, so dividing by the max is observable');
  const n = 320 * 320;
  for (const i of [0, 1, 777, 320 * 160 + 33, n - 1]) {
    for (let c = 0; c < 3; c++) {
      const want = (img.data[3 * i + c]! / max - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!;
      assert.ok(Math.abs(data[c * n + i]! - want) < 1e-5, `pixel ${i} channel ${c}: ${data[c * n + i]} vs ${want}`);
    }
  }
});

test('u2net matter: first output, min-max rescale, uint8 truncation — exact on a 320² image', async () => {
  const matter = await OnnxMatter.open('u2net', join(dir, 'u2net.onnx'));
  const img = gradient(320, 320);
  const alpha = await matter.matte(img);
  await matter.dispose();
  const max = img.data.reduce((a, b) => Math.max(a, b), 0);
  const n = 320 * 320;
  const pred = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < 3; c++) s += W[c]! * ((img.data[3 * i + c]! / max - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!);
    pred[i] = Math.abs(s);
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of pred) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  let exact = 0;
  let worst = 0;
  for (let i = 0; i < n; i++) {
    const want = Math.trunc(((pred[i]! - lo) / (hi - lo)) * 255) / 255;
    const d = Math.abs(alpha[i]! - want);
    worst = Math.max(worst, d);
    if (d < 1e-7) exact++;
  }
  // float32 (ORT) vs float64 (here) can move a value across a truncation boundary: at most one level, rarely.
  assert.ok(worst <= 1 / 255 + 1e-6, `worst ${worst}`);
  assert.ok(exact / n > 0.99, `only ${exact}/${n} exact`);
});

test('u2net matter: resized back to the input size; bright square → foreground, black → background', async () => {
  const matter = await OnnxMatter.open('u2net', join(dir, 'u2net-sum.onnx'));
  const w = 640;
  const h = 480;
  const data = new Uint8Array(w * h * 3);
  for (let y = 160; y < 320; y++) for (let x = 240; x < 400; x++) data.fill(200, 3 * (y * w + x), 3 * (y * w + x) + 3);
  const alpha = await matter.matte({ data, width: w, height: h, channels: 3 });
  await matter.dispose();
  assert.equal(alpha.length, w * h);
  // Lanczos ringing at the square's edge holds the maximum, so the interior sits a little below 1.
  assert.ok(alpha[240 * w + 320]! > 0.85, `centre ${alpha[240 * w + 320]}`);
  assert.ok(alpha[10 * w + 10]! < 0.05, `corner ${alpha[10 * w + 10]}`);
  assert.ok(alpha[(h - 1) * w + w - 1]! < 0.05);
});

test('MODNet size: shorter side 512, longer in proportion, multiples of 32', () => {
  assert.deepEqual(modnetSize(512, 512), [512, 512]);
  assert.deepEqual(modnetSize(300, 200), [768, 512]);
  assert.deepEqual(modnetSize(2000, 1000), [1024, 512]);
  assert.deepEqual(modnetSize(1000, 2000), [512, 1024]);
  assert.deepEqual(modnetSize(700, 400), [896, 512]); // 896 exactly
  assert.deepEqual(modnetSize(1920, 1080), [896, 512]); // 910.2 → 910 → 896
});

test('MODNet matter: mean/std 0.5 input, alpha taken as is — exact on a 512² image', async () => {
  const matter = await OnnxMatter.open('modnet', join(dir, 'modnet.onnx'));
  const img = gradient(512, 512);
  const alpha = await matter.matte(img);
  await matter.dispose();
  let worst = 0;
  for (let i = 0; i < 512 * 512; i++) {
    let s = 0;
    for (let c = 0; c < 3; c++) s += W[c]! * (img.data[3 * i + c]! / 127.5 - 1);
    const want = Math.round((1 / (1 + Math.exp(-s))) * 255) / 255;
    worst = Math.max(worst, Math.abs(alpha[i]! - want));
  }
  assert.ok(worst <= 1 / 255 + 1e-6, `worst ${worst}`);
});

test('MODNet matter on a non-multiple-of-32 image returns an alpha of the input size', async () => {
  const matter = await OnnxMatter.open('modnet', join(dir, 'modnet.onnx'));
  const alpha = await matter.matte(gradient(301, 205));
  await matter.dispose();
  assert.equal(alpha.length, 301 * 205);
  assert.ok(alpha.every((a) => a >= 0 && a <= 1));
});

test('a missing model file is a UserError that names the path and how to get it', async () => {
  const p = join(dir, 'nope', 'u2net.onnx');
  await assert.rejects(OnnxMatter.open('u2net', p), (e: unknown) => {
    assert.ok(e instanceof UserError);
    assert.match(e.message, /matting model not found/);
    assert.ok(e.message.includes(p));
    assert.match(e.message, /weights download/);
    return true;
  });
});

test('a file that is not an ONNX model is a UserError', async () => {
  const p = join(dir, 'garbage.onnx');
  await writeFile(p, 'this is not protobuf');
  await assert.rejects(OnnxMatter.open('modnet', p), (e: unknown) => e instanceof UserError && /not a usable ONNX modnet model/.test(e.message));
});
