// MTCNN on the compute core against the reference's boxes (facenet-pytorch MTCNN.detect, defaults) on 14 portraits.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { compositeOnWhite } from './composite.ts';
import { selectFace } from './detect.ts';
import { alphaOf, loadImage, rgbOf } from './image.ts';
import { areaResize, IntegralImage, MtcnnDetector } from './mtcnn.ts';

const DIR = new URL('../../../shared/golden/detect/', import.meta.url).pathname;
type Box5 = [number, number, number, number, number];
const golden = JSON.parse(readFileSync(join(DIR, 'mtcnn-boxes.json'), 'utf8')) as Record<
  string,
  { width: number; height: number; boxes: Box5[]; selected: Box5 | null }
>;

let mtcnn: MtcnnDetector;
before(async () => {
  mtcnn = await MtcnnDetector.load(undefined, { threads: 2 });
});
after(async () => {
  await mtcnn.release();
});

for (const [name, want] of Object.entries(golden)) {
  test(`MTCNN reproduces the reference's boxes on ${name} (every box within 0.5 px, probability within 1e-3)`, async () => {
    const loaded = await loadImage(join(DIR, 'img', name));
    const white = compositeOnWhite(rgbOf(loaded.rgba), alphaOf(loaded.rgba));
    assert.equal(white.width, want.width);
    const got = await mtcnn.detect(white);
    assert.equal(got.length, want.boxes.length, `${got.length} boxes, reference ${want.boxes.length}`);
    for (const w of want.boxes) {
      const err = (g: (typeof got)[number]) =>
        Math.max(Math.abs(g.x1 - w[0]), Math.abs(g.y1 - w[1]), Math.abs(g.x2 - w[2]), Math.abs(g.y2 - w[3]));
      const best = got.reduce((a, b) => (err(b) < err(a) ? b : a));
      assert.ok(err(best) <= 0.5, `box ${w.slice(0, 4).join(', ')}: nearest differs by ${err(best).toFixed(3)} px`);
      assert.ok(Math.abs(best.score - w[4]) <= 1e-3, `probability ${best.score} vs ${w[4]}`);
    }
    const sel = selectFace(got);
    if (want.selected) {
      assert.ok(sel);
      assert.ok(Math.abs(sel.x1 - want.selected[0]) <= 0.5 && Math.abs(sel.y2 - want.selected[3]) <= 0.5, 'selected face');
    } else assert.equal(sel, undefined);
  });
}

test("area resampling = torch's adaptive average pooling windows (floor/ceil of i·in/out)", () => {
  // 5 → 3: windows [0,2), [1,4), [3,5).
  const r = areaResize(Float32Array.of(1, 2, 3, 4, 5), 1, 1, 5, 1, 3);
  assert.deepEqual([...r], [1.5, 3, 4.5]);
});

test("a summed-area table refilled in an earlier, larger photo's buffer equals a new one", () => {
  const px = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7919 + seed) % 256);
  const big = IntegralImage.fromInterleaved(px(3 * 40 * 50, 1), 3, 40, 50);
  const small = px(3 * 17 * 23, 2);
  const fresh = IntegralImage.fromInterleaved(small, 3, 17, 23);
  const reused = IntegralImage.fromInterleaved(small, 3, 17, 23, big.sums.buffer as ArrayBuffer);
  assert.equal(reused.sums.buffer, big.sums.buffer);
  assert.deepEqual([...reused.sums], [...fresh.sums]);
  assert.deepEqual([...reused.resize(2, 3, 11, 13, 5, 4)], [...fresh.resize(2, 3, 11, 13, 5, 4)]);
});

test('preprocess detects with MTCNN by default and crops on its box unchanged (no calibration)', async () => {
  const { preprocess } = await import('./preprocess.ts');
  const r = await preprocess(join(DIR, 'img', 'facelift_000.png'));
  const want = golden['facelift_000.png']!.selected!;
  assert.ok(r.faceBox && !r.usedFallback);
  assert.ok(Math.abs(r.faceBox.x1 - want[0]) <= 0.5 && Math.abs(r.faceBox.y2 - want[3]) <= 0.5, JSON.stringify(r.faceBox));
  const crop = r.cropBox!, face = r.faceBox;
  for (const k of ['x1', 'y1', 'x2', 'y2'] as const) assert.ok(Math.abs(crop[k] - face[k]) < 1e-9, `${k}: ${crop[k]} vs ${face[k]}`);
});
