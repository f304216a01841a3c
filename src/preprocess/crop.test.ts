import { test } from 'node:test';
import sharp from 'sharp';
import assert from 'node:assert/strict';
import { FACE_CENTER, FACE_SIZE, REFERENCE_TARGET, applyCropPlan, planFaceCrop } from './crop.ts';
import type { RawImage } from './image.ts';

/** Every pixel a different colour, so any misplacement shows. */
function unique(w: number, h: number): RawImage & { channels: 3 } {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 3 * (y * w + x);
      data[i] = x % 251;
      data[i + 1] = y % 241;
      data[i + 2] = (x * 31 + y * 17) % 239;
    }
  }
  return { data, width: w, height: h, channels: 3 };
}

function px(img: RawImage, x: number, y: number): number[] {
  const i = img.channels * (y * img.width + x);
  return Array.from(img.data.subarray(i, i + img.channels));
}

test('constants are the reference values', () => {
  assert.equal(FACE_SIZE, 194.2749650813705);
  assert.deepEqual(FACE_CENTER, [251.83270369057132, 280.0133630862363]);
});

// Expected numbers computed with the spec's Python expressions (int() truncation) in CPython.
test('plan: face right of centre, shrinking (negative offsets)', () => {
  const p = planFaceCrop(1000, 800, { x1: 400, y1: 300, x2: 600, y2: 520 });
  assert.equal(p.ratio, 0.9251188813398595);
  assert.equal(p.scaledWidth, 925);
  assert.equal(p.scaledHeight, 740);
  assert.deepEqual(p.scaledCenter, [462, 379]);
  assert.ok(Math.abs(p.dx - -210.16729630942868) < 1e-12);
  assert.ok(Math.abs(p.dy - -98.98663691376368) < 1e-12);
  assert.deepEqual(p.crop, { left: 210, top: 98, right: 722, bottom: 610 });
  assert.deepEqual(p.paste, { x: 0, y: 0 });
});

test('plan: small face near the corner, enlarging (positive offsets)', () => {
  const p = planFaceCrop(300, 200, { x1: 10, y1: 20, x2: 110, y2: 100 });
  assert.equal(p.ratio, 2.158610723126339);
  assert.equal(p.scaledWidth, 647);
  assert.equal(p.scaledHeight, 431);
  assert.deepEqual(p.scaledCenter, [129, 129]);
  assert.deepEqual(p.crop, { left: 0, top: 0, right: 389, bottom: 360 });
  assert.deepEqual(p.paste, { x: 122, y: 151 });
});

test('a degenerate box is refused', () => {
  assert.throws(() => planFaceCrop(100, 100, { x1: 5, y1: 5, x2: 5, y2: 5 }), /no size/);
});

test('crop at scale 1 with the reference target: exact pixel placement, white elsewhere', async () => {
  // A box of side exactly FACE_SIZE at the origin gives r = 1 exactly, so no resampling happens.
  const img = unique(600, 600);
  const plan = planFaceCrop(600, 600, { x1: 0, y1: 0, x2: FACE_SIZE, y2: FACE_SIZE });
  assert.equal(plan.ratio, 1);
  assert.deepEqual(plan.scaledCenter, [97, 97]);
  assert.deepEqual(plan.paste, { x: 154, y: 183 });
  assert.deepEqual(plan.crop, { left: 0, top: 0, right: 357, bottom: 328 });
  const out = await applyCropPlan(img, plan);
  assert.equal(out.width, 512);
  assert.equal(out.height, 512);
  for (let y = 0; y < 512; y++) {
    for (let x = 0; x < 512; x++) {
      const inside = x >= 154 && x < 154 + 357 && y >= 183 && y < 183 + 328;
      const want = inside ? px(img, x - 154, y - 183) : [255, 255, 255];
      if (px(out, x, y).join() !== want.join()) assert.fail(`pixel (${x},${y}) = ${px(out, x, y)}, want ${want}`);
    }
  }
});

test('crop at scale 1, face far right/bottom: the crop starts inside the image and is pasted at (0,0)', async () => {
  const img = unique(900, 900);
  const target = { ...REFERENCE_TARGET, faceSize: 100 };
  const plan = planFaceCrop(900, 900, { x1: 600, y1: 650, x2: 700, y2: 750 }, target);
  assert.equal(plan.ratio, 1);
  assert.deepEqual(plan.crop, { left: 398, top: 419, right: 900, bottom: 900 });
  assert.deepEqual(plan.paste, { x: 0, y: 0 });
  const out = await applyCropPlan(img, plan);
  for (let y = 0; y < 512; y++) {
    for (let x = 0; x < 512; x++) {
      const inside = x < 900 - 398 && y < 900 - 419;
      const want = inside ? px(img, x + 398, y + 419) : [255, 255, 255];
      if (px(out, x, y).join() !== want.join()) assert.fail(`pixel (${x},${y}) = ${px(out, x, y)}, want ${want}`);
    }
  }
});

/** Bounding box of the pixels darker than 128 in channel 0. */
function darkBounds(img: RawImage): { x1: number; y1: number; x2: number; y2: number } {
  let x1 = Infinity; let y1 = Infinity; let x2 = -Infinity; let y2 = -Infinity;
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) {
      if (img.data[img.channels * (y * img.width + x)]! < 128) {
        x1 = Math.min(x1, x); y1 = Math.min(y1, y); x2 = Math.max(x2, x + 1); y2 = Math.max(y2, y + 1);
      }
    }
  }
  return { x1, y1, x2, y2 };
}

for (const [name, w, h, box] of [
  ['shrink ×0.43', 1200, 900, { x1: 500, y1: 300, x2: 950, y2: 750 }],
  ['enlarge ×3.2', 200, 160, { x1: 40, y1: 50, x2: 100, y2: 112 }],
] as const) {
  test(`resampled crop (${name}): a dark face-box square lands with side FACE_SIZE centred on FACE_CENTER`, async () => {
    const data = new Uint8Array(w * h * 3).fill(230);
    for (let y = box.y1; y < box.y2; y++) for (let x = box.x1; x < box.x2; x++) data.fill(20, 3 * (y * w + x), 3 * (y * w + x) + 3);
    const out = await applyCropPlan({ data, width: w, height: h, channels: 3 }, planFaceCrop(w, h, box));
    const b = darkBounds(out);
    const side = (b.x2 - b.x1 + (b.y2 - b.y1)) / 2;
    // Truncations move the centre by < 1 px; resampling blurs the edges by about a pixel.
    assert.ok(Math.abs(side - FACE_SIZE) < 2.5, `side ${side}`);
    assert.ok(Math.abs((b.x1 + b.x2) / 2 - FACE_CENTER[0]) < 1.5, `centre x ${(b.x1 + b.x2) / 2}`);
    assert.ok(Math.abs((b.y1 + b.y2) / 2 - FACE_CENTER[1]) < 1.5, `centre y ${(b.y1 + b.y2) / 2}`);
  });
}

// Golden: the same crop done by Pillow (testdata/pillow-crop/README.md). Pillow's bicubic is the reference's filter.
for (const [name, box, maxMean, maxAbs] of [
  ['enlarge', { x1: 105, y1: 75, x2: 195, y2: 170 }, 0.05, 8],
  ['shrink', { x1: 230, y1: 110, x2: 610, y2: 500 }, 0.05, 4],
] as const) {
  test(`crop matches Pillow's (${name}): mean |Δ| < ${maxMean}, max |Δ| ≤ ${maxAbs}, same white area`, async () => {
    const dir = new URL('./testdata/pillow-crop/', import.meta.url).pathname;
    const input = await sharp(`${dir}${name}-input.png`).raw().toBuffer({ resolveWithObject: true });
    const rgb = { data: new Uint8Array(input.data), width: input.info.width, height: input.info.height, channels: 3 as const };
    const ours = await applyCropPlan(rgb, planFaceCrop(rgb.width, rgb.height, box));
    const pillow = await sharp(`${dir}${name}-pillow.png`).raw().toBuffer();
    let sum = 0;
    let max = 0;
    let whiteMismatch = 0;
    for (let i = 0; i < pillow.length; i++) {
      const d = Math.abs(pillow[i]! - ours.data[i]!);
      sum += d;
      max = Math.max(max, d);
    }
    for (let i = 0; i < pillow.length; i += 3) {
      const w = (a: ArrayLike<number>) => a[i] === 255 && a[i + 1] === 255 && a[i + 2] === 255;
      if (w(pillow) !== w(ours.data)) whiteMismatch++;
    }
    assert.ok(sum / pillow.length < maxMean, `mean ${sum / pillow.length}`);
    assert.ok(max <= maxAbs, `max ${max}`);
    assert.equal(whiteMismatch, 0);
  });
}
