import { test } from 'node:test';
import assert from 'node:assert/strict';
import { faceliftViews } from '../cameras/rigs.ts';
import { FACE_CENTER, FACE_SIZE } from '../preprocess/crop.ts';
import { calibrateBox, selectFace, SsdFaceDetector, SSD_TO_MTCNN } from '../preprocess/detect.ts';
import { generateHead } from './head.ts';
import { sampleHeadParams } from './params.ts';
import { compositeRgb, renderRgba } from './render.ts';

test('front views are detected as faces and framed like FaceLift crops (side ≈ 194 px, centre ≈ (252, 280))', async () => {
  const detector = await SsdFaceDetector.load();
  const front = faceliftViews(512)[0];
  let size = 0, cx = 0, cy = 0;
  const seeds = [11, 12, 13, 14];
  for (const seed of seeds) {
    const img = renderRgba(generateHead(sampleHeadParams(seed), { spacing: 0.012 }).gaussians, front);
    const rgb = compositeRgb(img, () => [1, 1, 1]);
    const face = selectFace(await detector.detect({ width: 512, height: 512, channels: 3, data: rgb }));
    assert.ok(face, `seed ${seed}: no face detected with score > 0.8`);
    const b = calibrateBox(face, SSD_TO_MTCNN);
    size += ((b.x2 - b.x1) + (b.y2 - b.y1)) / 2 / seeds.length;
    cx += (b.x1 + b.x2) / 2 / seeds.length;
    cy += (b.y1 + b.y2) / 2 / seeds.length;
  }
  assert.ok(Math.abs(size / FACE_SIZE - 1) < 0.1, `mean face box side ${size} vs ${FACE_SIZE}`);
  assert.ok(Math.hypot(cx - FACE_CENTER[0], cy - FACE_CENTER[1]) < 16, `mean face centre (${cx}, ${cy}) vs (${FACE_CENTER.join(', ')})`);
});
