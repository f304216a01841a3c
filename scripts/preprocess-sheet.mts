/**
 * A contact sheet of preprocessing as `facelift infer` does it: one row per photo — the photo, the matte, and the
 * 512² conditioning image (matted onto white, MTCNN, similarity crop) — each fitted into a square thumbnail.
 *
 *   node --import tsx scripts/preprocess-sheet.mts OUT.png [--matting selfie|none] [--size 192] IMAGE...
 *
 * src/preprocess/README.md shows it for the bundled examples; the reference's real detector portraits
 * (../shared/golden/detect/img) are test data that is not redistributed, so their sheet is made locally with this.
 */
import { basename } from 'node:path';
import { writePng } from '../src/io/image.ts';
import { loadImage, resizeRaw, rgbOf, type RawImage } from '../src/preprocess/image.ts';
import { preprocess } from '../src/preprocess/preprocess.ts';
import { SelfieMatter } from '../src/preprocess/selfie.ts';
import { contactSheet, type Thumb } from '../src/synth/contact-sheet.ts';

const args = process.argv.slice(2);
const take = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const [v] = args.splice(i, 2).slice(1);
  return v ?? dflt;
};
const matting = take('--matting', 'selfie');
const size = Number(take('--size', '192'));
const [out, ...images] = args;
if (!out || images.length === 0) {
  console.error('usage: preprocess-sheet.mts OUT.png [--matting selfie|none] [--size 192] IMAGE...');
  process.exit(2);
}

/** Fits an RGB image into a size² white square, centred. */
async function fit(img: RawImage & { channels: 3 }): Promise<Thumb> {
  const s = size / Math.max(img.width, img.height);
  const w = Math.max(1, Math.round(img.width * s));
  const h = Math.max(1, Math.round(img.height * s));
  const small = await resizeRaw(img, w, h, 'lanczos3');
  const rgb = new Uint8Array(3 * size * size).fill(255);
  const x0 = (size - w) >> 1;
  const y0 = (size - h) >> 1;
  for (let y = 0; y < h; y++) rgb.set(small.data.subarray(3 * y * w, 3 * (y + 1) * w), 3 * ((y0 + y) * size + x0));
  return { width: size, height: size, rgb };
}

const matter = matting === 'selfie' ? await SelfieMatter.open({ threads: 2 }) : undefined;
const rows: Thumb[][] = [];
for (const file of images) {
  const photo = rgbOf((await loadImage(file)).rgba);
  const alpha = matter ? await matter.matte(photo) : new Float32Array(photo.width * photo.height).fill(1);
  const grey = Uint8Array.from({ length: 3 * alpha.length }, (_, i) => Math.round(alpha[Math.floor(i / 3)]! * 255));
  const pre = await preprocess(file, matter ? { matter } : {});
  rows.push([
    await fit(photo),
    await fit({ data: grey, width: photo.width, height: photo.height, channels: 3 }),
    await fit(pre.image),
  ]);
  const how = pre.usedFallback ? `fallback (${pre.fallbackReason})` : `face ${pre.faceBox?.score.toFixed(3)}`;
  console.log(`${basename(file)}: ${how}`);
}
await matter?.dispose();
const sheet = contactSheet(rows);
await writePng(out, { width: sheet.width, height: sheet.height, channels: 3, data: sheet.rgb });
console.log(`wrote ${out}`);
