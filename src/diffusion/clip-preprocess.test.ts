import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import sharp from 'sharp';
import { clipPixelValues, clipResizeAndCrop, parseClipPreprocessConfig, shortestEdgeSize } from './clip-preprocess.ts';
import { JsonFields } from './json-fields.ts';
import { pilResize } from './pil-resize.ts';
import { GOLDEN, maxAbsDiff, readSafetensors, tensor } from './testing/golden.ts';

const pipe = join(GOLDEN, 'pipeline-tiny');
const cases = await readSafetensors(join(pipe, 'cases.safetensors'));
const cfg = parseClipPreprocessConfig(JsonFields.fromFile(join(pipe, 'pipeckpts/feature_extractor/preprocessor_config.json'), 'preprocessor_config.json'));

async function inputImage() {
  const { data, info } = await sharp(join(pipe, 'input.png')).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data) };
}

test('input.png decodes to the recorded pixels', async () => {
  const img = await inputImage();
  assert.deepEqual([img.width, img.height], [64, 64]);
  assert.equal(maxAbsDiff(img.data, tensor(cases, 'common.input_image_u8').data), 0);
});

test('Pillow bicubic resize 64→32 reproduces clip_resized_u8 exactly', async () => {
  const r = clipResizeAndCrop(await inputImage(), cfg);
  assert.deepEqual([r.width, r.height], [32, 32]);
  assert.equal(maxAbsDiff(r.data, tensor(cases, 'common.clip_resized_u8').data), 0);
  // A plain (non-antialiased) filter would not: bilinear differs visibly.
  const bil = pilResize((await inputImage()).data, 64, 64, 3, 32, 32, 'bilinear');
  assert.ok(maxAbsDiff(bil, tensor(cases, 'common.clip_resized_u8').data) > 1);
});

test('pixel values = (u8/255 − mean)/std within 1e-6 of the processor output', async () => {
  const { pixels } = clipPixelValues(await inputImage(), cfg);
  const ref = tensor(cases, 'common.clip_pixel_values').data;
  for (let v = 0; v < 6; v++) assert.ok(maxAbsDiff(pixels, ref.subarray(v * pixels.length, (v + 1) * pixels.length)) <= 1e-6);
});

test('shortest-edge sizes, centre crop and config layouts', () => {
  assert.deepEqual(shortestEdgeSize(512, 512, 224), { width: 224, height: 224 });
  assert.deepEqual(shortestEdgeSize(640, 480, 224), { width: 298, height: 224 });
  assert.deepEqual(shortestEdgeSize(480, 640, 224), { width: 224, height: 298 });
  // A 6×4 image whose columns are their index: crop 2×2 of the 3×2 resize keeps the middle.
  const img = { width: 6, height: 4, data: new Uint8Array(6 * 4 * 3).map((_, i) => Math.floor(i / 3) % 6 * 40) };
  const r = clipResizeAndCrop(img, { ...cfg, shortestEdge: 2, cropHeight: 2, cropWidth: 2 });
  assert.deepEqual([r.width, r.height], [2, 2]);
  const old = parseClipPreprocessConfig(JsonFields.fromText(JSON.stringify({ size: 224, crop_size: 224, resample: 3, image_mean: [0.1, 0.2, 0.3], image_std: [1, 1, 1] }), 'old'));
  assert.deepEqual([old.shortestEdge, old.cropHeight, old.cropWidth, old.rescaleFactor], [224, 224, 224, 1 / 255]);
  assert.throws(() => parseClipPreprocessConfig(JsonFields.fromText(JSON.stringify({ size: 224, crop_size: 224, resample: 0, image_mean: [0, 0, 0], image_std: [1, 1, 1] }), 'x')), /resample/);
  assert.throws(() => clipResizeAndCrop({ width: 2, height: 2, data: new Uint8Array(5) }, cfg), /expected 2×2×3/);
});
