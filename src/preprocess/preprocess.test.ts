import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { UserError } from '../util/errors.ts';
import { compositeOnWhite } from './composite.ts';
import { FACE_CENTER, FACE_SIZE } from './crop.ts';
import { IDENTITY_CALIBRATION, SSD_TO_MTCNN, calibrateBox } from './detect.ts';
import type { DetectedFace, FaceDetector } from './detect.ts';
import type { RawImage } from './image.ts';
import { OnnxMatter } from './matting.ts';
import type { Matter } from './matting.ts';
import { preprocess } from './preprocess.ts';
import { tinyOnnx } from './testing/tiny-onnx.ts';

let dir = '';
before(async () => { dir = await mkdtemp(join(tmpdir(), 'facelift-preprocess-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

const W = 800;
const H = 600;
const FACE = { x1: 420, y1: 180, x2: 620, y2: 420 }; // mean side 220

/** Grey photo, a dark "face" square at FACE, a red stripe (the "background") in the left 100 columns. */
async function photo(): Promise<Buffer> {
  const data = Buffer.alloc(W * H * 3, 200);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = 3 * (y * W + x);
      if (x < 100) data.set([220, 30, 30], i);
      else if (x >= FACE.x1 && x < FACE.x2 && y >= FACE.y1 && y < FACE.y2) data.set([20, 20, 20], i);
    }
  }
  return sharp(data, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
}

/** Matte: background (alpha 0) in the left 100 columns, foreground elsewhere. */
const stripeMatter: Matter = {
  name: 'stripe',
  async matte(rgb) {
    const a = new Float32Array(rgb.width * rgb.height).fill(1);
    for (let y = 0; y < rgb.height; y++) for (let x = 0; x < 100; x++) a[y * rgb.width + x] = 0;
    return a;
  },
};

const throwingMatter: Matter = { name: 'broken', async matte() { throw new Error('session exploded'); } };

function fixedDetector(faces: DetectedFace[]): FaceDetector & { calls: number } {
  return { name: 'fixed', calls: 0, async detect() { this.calls++; return faces; } };
}

function px(img: RawImage, x: number, y: number): number[] {
  const i = img.channels * (y * img.width + x);
  return Array.from(img.data.subarray(i, i + img.channels));
}

function darkBounds(img: RawImage): { x1: number; y1: number; x2: number; y2: number } {
  let x1 = Infinity; let y1 = Infinity; let x2 = -Infinity; let y2 = -Infinity;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      if (img.data[img.channels * (y * img.width + x)]! < 100) {
        x1 = Math.min(x1, x); y1 = Math.min(y1, y); x2 = Math.max(x2, x + 1); y2 = Math.max(y2, y + 1);
      }
    }
  }
  return { x1, y1, x2, y2 };
}

test('auto-crop: matte → white composite → largest confident face → face square at FACE_CENTER, size FACE_SIZE', async () => {
  const det = fixedDetector([
    { ...FACE, score: 0.95 },
    { x1: 10, y1: 10, x2: 60, y2: 60, score: 0.99 }, // smaller
    { x1: 0, y1: 0, x2: 700, y2: 590, score: 0.5 }, // larger but not confident
  ]);
  const r = await preprocess(await photo(), { matter: stripeMatter, detector: det, calibration: IDENTITY_CALIBRATION });
  assert.equal(det.calls, 1);
  assert.equal(r.usedFallback, false);
  assert.equal(r.matting, 'model');
  assert.deepEqual(r.faceBox, { ...FACE, score: 0.95 });
  assert.deepEqual(r.cropBox, FACE);
  assert.equal(r.image.width, 512);
  assert.equal(r.image.height, 512);
  assert.equal(r.image.channels, 3);
  const b = darkBounds(r.image);
  assert.ok(Math.abs((b.x2 - b.x1 + (b.y2 - b.y1)) / 2 - FACE_SIZE) < 2.5, JSON.stringify(b));
  assert.ok(Math.abs((b.x1 + b.x2) / 2 - FACE_CENTER[0]) < 1.5, JSON.stringify(b));
  assert.ok(Math.abs((b.y1 + b.y2) / 2 - FACE_CENTER[1]) < 1.5, JSON.stringify(b));
  // The matted-out red stripe (x < 100 → x·r + offset < 0 here: r≈0.883, dx≈−230) is outside; the left edge
  // of the canvas shows the grey foreground, never red.
  for (let y = 0; y < 512; y += 8) assert.ok(px(r.image, 0, y)[1]! > 150, `red leaked at (0,${y})`);
  assert.ok(r.timings.totalMs >= r.timings.loadMs);
});

test("the crop uses the detector's own calibration: none for a detector without one, SSD_TO_MTCNN for SSD's", async () => {
  const plain = await preprocess(await photo(), { detector: fixedDetector([{ ...FACE, score: 0.9 }]) });
  assert.deepEqual(plain.cropBox, FACE);
  const ssdLike = { ...fixedDetector([{ ...FACE, score: 0.9 }]), calibration: SSD_TO_MTCNN };
  const r = await preprocess(await photo(), { detector: ssdLike });
  assert.deepEqual(r.cropBox, calibrateBox(FACE, SSD_TO_MTCNN));
  assert.notDeepEqual(r.cropBox, FACE);
});

test('calibration constants move and scale the crop box', async () => {
  const det = fixedDetector([{ ...FACE, score: 0.9 }]);
  const r = await preprocess(await photo(), { detector: det, calibration: { scale: 2, offsetX: 0.1, offsetY: 0 } });
  // side 220 → 440, centre x 520 + 22
  assert.deepEqual(r.cropBox, { x1: 542 - 200, y1: 300 - 240, x2: 542 + 200, y2: 300 + 240 });
  const b = darkBounds(r.image);
  assert.ok(Math.abs((b.x2 - b.x1 + (b.y2 - b.y1)) / 2 - FACE_SIZE / 2) < 2.5, JSON.stringify(b));
});

test('no confident face → fallback: composited image resized to 512², RGB, with the reason', async () => {
  const r = await preprocess(await photo(), { matter: stripeMatter, detector: fixedDetector([{ ...FACE, score: 0.6 }]) });
  assert.equal(r.usedFallback, true);
  assert.match(r.fallbackReason!, /no face with score > 0.8 \(best 0.60\)/);
  assert.equal(r.image.channels, 3);
  assert.equal(r.image.data.length, 512 * 512 * 3);
  // left 100/800 of the width was matted out → white; the face square is stretched to 512/800 × 512/600.
  assert.deepEqual(px(r.image, 20, 256), [255, 255, 255]);
  assert.deepEqual(px(r.image, Math.round(520 * 0.64), Math.round(300 * 512 / 600)), [20, 20, 20]);
  const none = await preprocess(await photo(), { detector: fixedDetector([]) });
  assert.equal(none.fallbackReason, 'no face found');
});

test('a detector error also falls back (as the reference does on any exception)', async () => {
  const det: FaceDetector = { name: 'boom', async detect() { throw new Error('tensor disaster'); } };
  const r = await preprocess(await photo(), { detector: det });
  assert.equal(r.usedFallback, true);
  assert.match(r.fallbackReason!, /face crop failed: tensor disaster/);
});

test('matting failure → the original photo resized (reference: rembg failed too)', async () => {
  const r = await preprocess(await photo(), { matter: throwingMatter, detector: fixedDetector([{ ...FACE, score: 0.9 }]) });
  assert.equal(r.usedFallback, true);
  assert.match(r.fallbackReason!, /background matting failed \(broken\): session exploded/);
  const red = px(r.image, 20, 256);
  assert.ok(red[0]! > 200 && red[1]! < 60, `the unmatted red stripe stays: ${red}`);
});

test('--no-auto-crop: matte + white composite + non-uniform resize to 512², no detection', async () => {
  const det = fixedDetector([{ ...FACE, score: 0.9 }]);
  const r = await preprocess(await photo(), { autoCrop: false, matter: stripeMatter, detector: det });
  assert.equal(det.calls, 0);
  assert.equal(r.usedFallback, false);
  assert.equal(r.faceBox, undefined);
  assert.deepEqual(px(r.image, 20, 256), [255, 255, 255]);
  const b = darkBounds(r.image);
  assert.ok(Math.abs(b.x1 - 420 * 0.64) <= 1.5 && Math.abs(b.x2 - 620 * 0.64) <= 1.5, JSON.stringify(b));
  assert.ok(Math.abs(b.y1 - 180 * 512 / 600) <= 1.5 && Math.abs(b.y2 - 420 * 512 / 600) <= 1.5, JSON.stringify(b));
});

test('an input with a real alpha channel skips matting and is composited with its own alpha', async () => {
  const data = Buffer.alloc(64 * 64 * 4);
  for (let i = 0; i < 64 * 64; i++) data.set([10, 200, 10, (i % 64) < 32 ? 255 : 0], 4 * i);
  const png = await sharp(data, { raw: { width: 64, height: 64, channels: 4 } }).png().toBuffer();
  const r = await preprocess(png, { autoCrop: false, matter: throwingMatter });
  assert.equal(r.matting, 'input-alpha');
  assert.equal(r.usedFallback, false);
  assert.deepEqual(px(r.image, 100, 256), [10, 200, 10]);
  assert.deepEqual(px(r.image, 400, 256), [255, 255, 255]);
});

test('white composite: straight vs the reference\'s rembg double multiplication', () => {
  const rgb = { data: Uint8Array.from([100, 0, 200]), width: 1, height: 1, channels: 3 as const };
  const a = Float32Array.from([0.5]);
  assert.deepEqual(Array.from(compositeOnWhite(rgb, a, 'straight').data), [178, 128, 228]); // c/2 + 127.5
  assert.deepEqual(Array.from(compositeOnWhite(rgb, a, 'rembg').data), [153, 128, 178]); // c/4 + 127.5
});

test('rembg style matches what Pillow computes for rembg\'s cut-out + FaceLift\'s alpha_composite', () => {
  // Pillow 12.3: Image.composite(img, Image.new('RGBA', size, 0), mask), then
  // Image.alpha_composite(white RGBA, cutout).convert('RGB'), for three pixels with mask 128, 255, 64.
  const rgb = { data: Uint8Array.from([100, 0, 200, 100, 0, 200, 10, 250, 30]), width: 3, height: 1, channels: 3 as const };
  const alpha = Float32Array.from([128 / 255, 1, 64 / 255]);
  const pillow = [152, 127, 177, 100, 0, 200, 192, 207, 193];
  const ours = Array.from(compositeOnWhite(rgb, alpha, 'rembg').data);
  assert.ok(ours.every((v, i) => Math.abs(v - pillow[i]!) <= 1), `${ours} vs ${pillow}`);
});

test('with a real ONNX matter (tiny graph) in the loop', async () => {
  // matte = min-max of the sum of normalised channels: the dark face square becomes background, the rest foreground
  const p = join(dir, 'u2net.onnx');
  await writeFile(p, tinyOnnx({
    inputs: [{ name: 'input.1', dims: [1, 3, 320, 320] }],
    outputs: [{ name: 'd0', dims: [1, 1, 320, 320] }],
    initializers: [{ name: 'w', dims: [1, 3, 1, 1], data: Float32Array.from([1, 1, 1]) }],
    nodes: [{ op: 'Conv', inputs: ['input.1', 'w'], outputs: ['d0'] }],
  }));
  const matter = await OnnxMatter.open('u2net', p);
  const r = await preprocess(await photo(), { autoCrop: false, matter });
  await matter.dispose();
  assert.equal(r.matting, 'model');
  const centre = px(r.image, Math.round(520 * 0.64), Math.round(300 * 512 / 600));
  assert.ok(centre.every((v) => v > 240), `the dark square was matted out: ${centre}`);
});

test('unreadable input is a UserError, not a fallback', async () => {
  await assert.rejects(preprocess(Buffer.from('GIF89a-but-not-really')), UserError);
});

test('real photo, default SSD detector, EXIF-rotated file: face found, cropped to the reference geometry', async () => {
  const demo = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo', 'sample1.jpg');
  // Store the portrait turned a quarter left, with EXIF orientation 6 saying "turn it right to view".
  const file = join(dir, 'sideways.jpg');
  await sharp(demo).extract({ left: 300, top: 250, width: 400, height: 450 }).rotate(270).jpeg({ quality: 92 })
    .withMetadata({ orientation: 6 }).toFile(file);
  const r = await preprocess(file);
  assert.equal(r.source.orientation, 6);
  assert.equal(r.usedFallback, false, r.fallbackReason);
  assert.ok(r.faceBox && r.faceBox.score > 0.8);
  assert.equal(r.matting, 'none');
  // Upright again: the face box is taller-than-wide-ish and sits in the upper-middle of the 400×450 portrait.
  const f = r.faceBox!;
  assert.ok(f.x1 > 50 && f.x2 < 350 && f.y1 > 60 && f.y2 < 400, JSON.stringify(f));
  assert.ok(r.timings.detectMs > 0);
});
