import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { readFileSync } from 'node:fs';
import { IDENTITY_CALIBRATION, SSD_TO_MTCNN, SsdFaceDetector, calibrateBox, fitCalibration, selectFace } from './detect.ts';
import type { Box } from './crop.ts';
import type { DetectedFace } from './detect.ts';
import type { RawImage } from './image.ts';

// face-api's npm package ships demo photos (group pictures); they are the only real faces available offline.
const demoDir = join(dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json')), 'demo');

async function rgbOfFile(path: string, region?: { left: number; top: number; width: number; height: number }, scale = 1): Promise<RawImage & { channels: 3 }> {
  let p = sharp(path).removeAlpha();
  if (region) p = p.extract(region);
  if (scale !== 1 && region) p = p.resize(region.width * scale, region.height * scale, { kernel: 'cubic' });
  const { data, info } = await p.raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height, channels: 3 };
}

const face = (x1: number, y1: number, x2: number, y2: number, score: number): DetectedFace => ({ x1, y1, x2, y2, score });

test('selectFace: score must exceed 0.8, then the largest area wins', () => {
  const small = face(0, 0, 10, 10, 0.99);
  const big = face(0, 0, 30, 30, 0.85);
  const bigger = face(0, 0, 50, 50, 0.8); // exactly 0.8 is not > 0.8
  assert.equal(selectFace([small, big, bigger]), big);
  assert.equal(selectFace([bigger]), undefined);
  assert.equal(selectFace([]), undefined);
  assert.equal(selectFace([small, big, bigger], 0.5), bigger);
});

test('calibrateBox: scale about the centre, offsets in units of the mean side', () => {
  const b = { x1: 10, y1: 20, x2: 110, y2: 140 };
  assert.deepEqual(calibrateBox(b, IDENTITY_CALIBRATION), b);
  // side = 110, centre (60, 80)
  assert.deepEqual(calibrateBox(b, { scale: 1.5, offsetX: 0.1, offsetY: -0.2 }), { x1: 71 - 75, y1: 58 - 90, x2: 71 + 75, y2: 58 + 90 });
});

test('fitCalibration recovers a known transform; SSD_TO_MTCNN is the fit of the measured SSD/MTCNN pairs', () => {
  const truth = { scale: 1.1, offsetX: 0.05, offsetY: -0.04 };
  const boxes: Box[] = [{ x1: 0, y1: 0, x2: 100, y2: 120 }, { x1: 50, y1: 30, x2: 250, y2: 260 }, { x1: 7, y1: 9, x2: 40, y2: 50 }];
  const fit = fitCalibration(boxes.map((d) => ({ detector: d, mtcnn: calibrateBox(d, truth) })));
  for (const k of ['scale', 'offsetX', 'offsetY'] as const) assert.ok(Math.abs(fit[k] - truth[k]) < 1e-12, k);

  const data = JSON.parse(readFileSync(new URL('./testdata/ssd-vs-mtcnn.json', import.meta.url), 'utf8')) as
    { pairs: Array<{ ssd: number[]; mtcnn: number[] }> };
  const toBox = (b: number[]): Box => ({ x1: b[0]!, y1: b[1]!, x2: b[2]!, y2: b[3]! });
  const pairs = data.pairs.map((p) => ({ detector: toBox(p.ssd), mtcnn: toBox(p.mtcnn) }));
  assert.ok(pairs.length >= 20);
  const measured = fitCalibration(pairs);
  assert.ok(Math.abs(measured.scale - SSD_TO_MTCNN.scale) < 0.005, `scale ${measured.scale}`);
  assert.ok(Math.abs(measured.offsetX - SSD_TO_MTCNN.offsetX) < 0.005, `offsetX ${measured.offsetX}`);
  assert.ok(Math.abs(measured.offsetY - SSD_TO_MTCNN.offsetY) < 0.005, `offsetY ${measured.offsetY}`);
  // What the crop cares about: the error of the mean side and centre. The calibration must shrink both.
  const err = (cal: typeof SSD_TO_MTCNN) => {
    let es = 0; let ec = 0;
    for (const { detector, mtcnn } of pairs) {
      const c = calibrateBox(detector, cal);
      const side = (b: Box) => (b.x2 - b.x1 + (b.y2 - b.y1)) / 2;
      es += Math.abs(Math.log(side(c) / side(mtcnn)));
      ec += Math.hypot((c.x1 + c.x2 - mtcnn.x1 - mtcnn.x2) / 2, (c.y1 + c.y2 - mtcnn.y1 - mtcnn.y2) / 2) / side(mtcnn);
    }
    return { es: es / pairs.length, ec: ec / pairs.length };
  };
  const before = err(IDENTITY_CALIBRATION);
  const after = err(SSD_TO_MTCNN);
  assert.ok(after.es < before.es && after.ec < before.ec, `${JSON.stringify(before)} → ${JSON.stringify(after)}`);
});

test('SSD finds the face in a real single-face crop, and the same face in a 4× enlargement (downscaled first)', async () => {
  const det = await SsdFaceDetector.load();
  // sample1.jpg has a face at about (414,354) 177×239; cut a portrait around it. In the 400×450 cut-out the eyes
  // are at about (140,205) and (215,205), the mouth at (180,300), the chin at y≈335 (looked at by eye).
  const region = { left: 300, top: 250, width: 400, height: 450 };
  const faces = await det.detect(await rgbOfFile(join(demoDir, 'sample1.jpg'), region));
  const f = selectFace(faces);
  assert.ok(f, `no face > 0.8 in ${JSON.stringify(faces)}`);
  for (const [x, y] of [[140, 205], [215, 205], [180, 300]] as const) {
    assert.ok(f.x1 < x && x < f.x2 && f.y1 < y && y < f.y2, `(${x},${y}) outside ${JSON.stringify(f)}`);
  }
  const side = (f.x2 - f.x1 + (f.y2 - f.y1)) / 2;
  assert.ok(side > 150 && side < 260, `side ${side}`);

  const big = await det.detect(await rgbOfFile(join(demoDir, 'sample1.jpg'), region, 4));
  const g = selectFace(big);
  assert.ok(g, 'no face in the enlargement');
  // Boxes come back in the enlarged image's coordinates.
  for (const k of ['x1', 'y1', 'x2', 'y2'] as const) assert.ok(Math.abs(g[k] / 4 - f[k]) < 12, `${k}: ${g[k] / 4} vs ${f[k]}`);
});

test('SSD on a group photo: several faces, selectFace takes the largest', async () => {
  const det = await SsdFaceDetector.load();
  const faces = await det.detect(await rgbOfFile(join(demoDir, 'sample1.jpg')));
  const strong = faces.filter((f) => f.score > 0.8);
  assert.ok(strong.length >= 3, `found ${faces.length}`);
  const f = selectFace(faces)!;
  const area = (x: DetectedFace) => (x.x2 - x.x1) * (x.y2 - x.y1);
  assert.ok(strong.every((x) => area(x) <= area(f)));
});

test('SSD on a blank image finds no face', async () => {
  const det = await SsdFaceDetector.load();
  const blank = { data: new Uint8Array(300 * 300 * 3).fill(255), width: 300, height: 300, channels: 3 as const };
  assert.equal(selectFace(await det.detect(blank)), undefined);
});
