import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { listViewFiles, readViews } from './views.ts';

async function png(path: string, w: number, h: number, channels: 3 | 4, px: (i: number) => number[]): Promise<void> {
  const buf = Buffer.alloc(w * h * channels);
  for (let i = 0; i < w * h; i++) buf.set(px(i), i * channels);
  await sharp(buf, { raw: { width: w, height: h, channels } }).png().toFile(path);
}

test('views: RGB read as is, RGBA composited onto white, planar [V,3,H,W]', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lrm-views-'));
  try {
    await png(join(dir, 'cam_000.png'), 4, 2, 3, (i) => [i * 10, 100, 255]);
    await png(join(dir, 'cam_001.png'), 4, 2, 4, (i) => [200, 0, 50, i === 0 ? 0 : i === 1 ? 255 : 51]);
    const files = listViewFiles(dir);
    assert.deepEqual(files.map((f) => f.slice(dir.length + 1)), ['cam_000.png', 'cam_001.png']);
    const v = await readViews(files);
    assert.deepEqual([v.views, v.height, v.width], [2, 2, 4]);
    const n = 8;
    assert.equal(v.rgb[3], Math.fround(30 / 255)); // view 0, R, pixel 3
    assert.equal(v.rgb[n + 5], Math.fround(100 / 255)); // G
    const r1 = (i: number) => v.rgb[3 * n + i];
    assert.equal(r1(0), 1); // fully transparent → white
    assert.ok(Math.abs(r1(1) - 200 / 255) < 1e-7); // opaque → its colour
    assert.ok(Math.abs(v.rgb[3 * n + n + 2] - (0 * 0.2 + 0.8)) < 1e-6); // G of α = 0.2 → 0.8
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('views: gaps in the numbering and mixed sizes are clear errors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lrm-views-'));
  try {
    assert.throws(() => listViewFiles(dir), /has no cam_000\.png/);
    await png(join(dir, 'cam_000.png'), 4, 4, 3, () => [0, 0, 0]);
    await png(join(dir, 'cam_002.png'), 8, 8, 3, () => [0, 0, 0]);
    assert.throws(() => listViewFiles(dir), /cam_001\.png is missing/);
    await assert.rejects(readViews([join(dir, 'cam_000.png'), join(dir, 'cam_002.png')]), /cam_002\.png is 8×8, but .*cam_000\.png is 4×4/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
