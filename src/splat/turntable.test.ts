import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probeVideo, decodeFrames } from '../io/video.ts';
import { renderTurntable } from './turntable.ts';
import { headScene } from './testing/scene.ts';

test('renderTurntable: an H.264 yuv420p MP4 with the requested frames, size and rate; frame 0 is the front render', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tt-'));
  try {
    const out = join(dir, 'turntable.mp4');
    const progress: number[] = [];
    const res = await renderTurntable(headScene(4000, 5), { out, frames: 12, fps: 24, resolution: 64, threads: 2, onProgress: (d) => progress.push(d) });
    assert.equal(res.frames, 12);
    assert.deepEqual(progress, Array.from({ length: 12 }, (_, i) => i + 1));
    const info = await probeVideo(out);
    assert.deepEqual([info.codec, info.pixFmt, info.width, info.height, info.frames, Math.round(info.fps)], ['h264', 'yuv420p', 64, 64, 12, 24]);
    // the head (skin-coloured, red > blue) is in the middle of frame 0 and the corners are white background
    const { frames } = await decodeFrames(out);
    const px = (x: number, y: number) => Array.from(frames[0].subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3));
    const [r, , b] = px(32, 32);
    assert.ok(r - b > 40, `centre ${px(32, 32)}`);
    assert.ok(px(1, 1).every((v) => v > 240), `corner ${px(1, 1)}`);
  } finally {
    await rm(dir, { recursive: true });
  }
});
