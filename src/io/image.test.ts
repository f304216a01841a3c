import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hconcat, planarToImage, readImage, toByte, writePng } from './image.ts';

test('planar float → 8 bit: ×255, clip, truncate (FaceLift output.png convention); alpha channel', () => {
  assert.deepEqual([toByte(-0.1), toByte(0), toByte(0.5), toByte(254.9 / 255), toByte(1), toByte(1.7)], [0, 0, 127, 254, 255, 255]);
  const planar = Float32Array.from([0.5, 1.2, 0, 0.25, 0.75, 1, -1, 0.1, 0.2]); // 3 pixels, C=3
  const img = planarToImage(planar, 3, 1);
  assert.deepEqual(Array.from(img.data), [127, 63, 0, 255, 191, 25, 0, 255, 51]);
  const rgba = planarToImage(planar, 3, 1, { alpha: Float32Array.from([0, 0.5, 1]) });
  assert.deepEqual(Array.from(rgba.data.filter((_, i) => i % 4 === 3)), [0, 127, 255]);
  assert.throws(() => planarToImage(planar, 2, 2), /expected 3·2·2/);
});

test('PNG write → read round trip (RGB and RGBA), hconcat', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'img-'));
  try {
    const a = { width: 5, height: 3, channels: 3 as const, data: Uint8Array.from({ length: 45 }, (_, i) => (i * 37) % 256) };
    const b = { width: 2, height: 3, channels: 3 as const, data: Uint8Array.from({ length: 18 }, (_, i) => i) };
    await writePng(join(dir, 'a.png'), a);
    assert.deepEqual(await readImage(join(dir, 'a.png')), a);
    const rgba = { width: 2, height: 2, channels: 4 as const, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]) };
    await writePng(join(dir, 'b.png'), rgba);
    assert.deepEqual(await readImage(join(dir, 'b.png')), rgba);
    const ab = hconcat([a, b]);
    assert.equal(ab.width, 7);
    assert.deepEqual(Array.from(ab.data.subarray(7 * 3, 7 * 3 + 15)), Array.from(a.data.subarray(15, 30)));
    assert.deepEqual(Array.from(ab.data.subarray(7 * 3 + 15, 7 * 3 + 21)), Array.from(b.data.subarray(6, 12)));
    await assert.rejects(readImage(join(dir, 'none.png')), /cannot read image/);
  } finally {
    await rm(dir, { recursive: true });
  }
});
