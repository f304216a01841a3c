/**
 * The packaged selfie segmenter, read by our TFLite reader and run on the compute core, against an independent
 * implementation of the same network (TensorFlow.js on its TF.js conversion; scripts/goldens/selfie-tfjs.mts) on
 * three real portraits; the matte at the photo's size; and damaged model files refused in plain words.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { readTflite } from '../io/tflite.ts';
import { UserError } from '../util/errors.ts';
import { loadImage, resizeRaw, rgbOf } from './image.ts';
import { preprocess } from './preprocess.ts';
import { SelfieMatter, selfieModelPath, upsampleMask } from './selfie.ts';

const DATA = new URL('./testdata/selfie/', import.meta.url).pathname;
// The reference's detector portraits (test data only, not shipped): the goldens are masks of them.
const PHOTOS = new URL('../../../shared/golden/detect/img/', import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), 'fl-selfie-'));
let matter: SelfieMatter;
before(async () => { matter = await SelfieMatter.open({ threads: 2 }); });
after(async () => {
  await matter.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

for (const file of ['diana_r15.jpg', 'facelift_001.png', 'iid_musk.jpeg']) {
  const name = file.replace(/\..*$/, '');
  test(`selfie mask matches TF.js on ${name}`, async () => {
    const rgb = rgbOf((await loadImage(join(PHOTOS, file))).rgba);
    const ours = await matter.mask(await matter.input(rgb));
    const raw = gunzipSync(readFileSync(join(DATA, `${name}.mask.u16.gz`)));
    const ref = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
    assert.equal(ours.length, ref.length);
    let sum = 0;
    let max = 0;
    let inter = 0;
    let union = 0;
    let fg = 0;
    for (let i = 0; i < ref.length; i++) {
      const r = ref[i]! / 65535;
      const d = Math.abs(ours[i]! - r);
      sum += d;
      max = Math.max(max, d);
      const a = ours[i]! > 0.5;
      const b = r > 0.5;
      if (a && b) inter++;
      if (a || b) union++;
      if (b) fg++;
    }
    // The two runtimes differ in summation order and in how the converted graph fuses operators; a wrong layout,
    // padding or resize rule shows as a mean error near 1e-2 and a maximum near 1 (tried: see the README).
    assert.ok(sum / ref.length < 1e-3, `mean |Δ| ${sum / ref.length}`);
    assert.ok(max < 0.1, `max |Δ| ${max}`);
    assert.ok(inter / union > 0.995, `IoU ${inter / union}`);
    assert.ok(fg / ref.length > 0.2 && fg / ref.length < 0.8, `a portrait is partly person: ${fg / ref.length}`);
  });
}

test('matte() returns an alpha at the photo’s size and range', async () => {
  const photo = rgbOf((await loadImage(join(PHOTOS, 'facelift_001.png'))).rgba);
  const wide = await resizeRaw(photo, 300, 200, 'linear');
  const alpha = await matter.matte(wide);
  assert.equal(alpha.length, 300 * 200);
  assert.ok(alpha.every((v) => v >= 0 && v <= 1));
  // The face is in the middle of this portrait, the corners are background.
  assert.ok(alpha[100 * 300 + 150]! > 0.9, `centre ${alpha[100 * 300 + 150]}`);
  assert.ok(alpha[0]! < 0.1 && alpha[299]! < 0.1, `corners ${alpha[0]}, ${alpha[299]}`);
});

test('upsampleMask keeps constants and interpolates between pixel centres', () => {
  const m = Float32Array.from([0, 1, 0, 1]);
  const up = upsampleMask(m, 2, 2, 4, 4);
  assert.deepEqual(Array.from(up.subarray(0, 4)), [0, 0.25, 0.75, 1]);
  assert.ok(upsampleMask(new Float32Array(4).fill(0.5), 2, 2, 7, 3).every((v) => Math.abs(v - 0.5) < 1e-7));
});

test('damaged or missing model files are refused in plain words, without paths', async () => {
  const path = selfieModelPath();
  assert.ok(path, 'the npm package ships the model');
  assert.throws(() => readTflite(new Uint8Array(64), 'x.tflite'), (e: unknown) =>
    e instanceof UserError && /x\.tflite is not a TensorFlow Lite model/.test(e.message));
  const bytes = readFileSync(path);
  const cut = join(tmp, 'cut.tflite');
  writeFileSync(cut, bytes.subarray(0, 4096));
  await assert.rejects(SelfieMatter.open({ modelPath: cut }), (e: unknown) =>
    e instanceof UserError && /is damaged.*reinstall/.test(e.message) && !e.message.includes(tmp));
  await assert.rejects(SelfieMatter.open({ modelPath: join(tmp, 'missing.tflite') }), (e: unknown) =>
    e instanceof UserError && /could not be read/.test(e.message) && !e.message.includes(tmp));
});

test('photos the reference never meets, matted by the segmenter: EXIF-rotated JPEG and 16-bit grey PNG', async () => {
  const demo = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo',
    'sample1.jpg');
  const sideways = join(tmp, 'sideways.jpg');
  await sharp(demo).extract({ left: 300, top: 250, width: 400, height: 450 }).rotate(270).jpeg({ quality: 92 })
    .withMetadata({ orientation: 6 }).toFile(sideways);
  const grey16 = join(tmp, 'grey16.png');
  await sharp(demo).extract({ left: 300, top: 250, width: 400, height: 450 }).greyscale().toColourspace('grey16')
    .png().toFile(grey16);
  const whiteShare = (img: { data: Uint8Array }): number => {
    let white = 0;
    for (let i = 0; i < img.data.length; i += 3) if (img.data[i]! > 250 && img.data[i + 2]! > 250) white++;
    return white / (img.data.length / 3);
  };
  for (const file of [sideways, grey16]) {
    const r = await preprocess(file, { matter });
    assert.equal(r.matting, 'model');
    assert.equal(r.usedFallback, false, r.fallbackReason);
    // The room behind the person is gone: much more of the conditioning image is white than without matting
    // (where only the crop's padding beyond the photo is).
    const plain = await preprocess(file);
    const [matted, unmatted] = [whiteShare(r.image), whiteShare(plain.image)];
    assert.ok(matted > unmatted + 0.1, `${matted} vs ${unmatted}`);
  }
});
