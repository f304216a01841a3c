import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Mp4Writer, decodeFrames, ffmpegPath, probeVideo } from './video.ts';

test('MP4 encode → decode: H.264 yuv420p, frame count, size and colours survive', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vid-'));
  try {
    const path = join(dir, 'a.mp4');
    const w = 64, h = 48, n = 17;
    const writer = Mp4Writer.open(path, { width: w, height: h, fps: 30 });
    for (let f = 0; f < n; f++) {
      const rgba = new Uint8Array(w * h * 4);
      for (let p = 0; p < w * h; p++) rgba.set([f * 15, 200, p % w < 32 ? 30 : 220, 255], 4 * p);
      await writer.write(rgba);
    }
    assert.deepEqual(await writer.close(), { frames: n });
    const info = await probeVideo(path);
    assert.deepEqual({ ...info, fps: Math.round(info.fps) }, { codec: 'h264', pixFmt: 'yuv420p', width: w, height: h, frames: n, fps: 30 });
    const dec = await decodeFrames(path, { every: 4 });
    assert.equal(dec.frames.length, 5);
    const px = (fr: Uint8Array, x: number, y: number) => Array.from(fr.subarray((y * w + x) * 3, (y * w + x) * 3 + 3));
    const [r, g, b] = px(dec.frames[2], 10, 10); // frame 8
    assert.ok(Math.abs(r - 120) < 8 && Math.abs(g - 200) < 8 && Math.abs(b - 30) < 8, `${r},${g},${b}`);
    assert.ok(Math.abs(px(dec.frames[2], 50, 10)[2] - 220) < 8);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('odd sizes are padded to even (yuv420p); bad frames and a missing binary give clear errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vid-'));
  try {
    const path = join(dir, 'odd.mp4');
    const writer = Mp4Writer.open(path, { width: 33, height: 21 });
    await assert.rejects(writer.write(new Uint8Array(10)), /expected 33·21·4/);
    await writer.write(new Uint8Array(33 * 21 * 4).fill(128));
    await writer.close();
    const info = await probeVideo(path);
    assert.deepEqual([info.width, info.height, info.frames], [34, 22, 1]);
    const saved = process.env.FFMPEG_PATH;
    process.env.FFMPEG_PATH = join(dir, 'no-ffmpeg');
    try {
      assert.throws(() => ffmpegPath(), /FFMPEG_PATH is set to .*no-ffmpeg, which does not exist/);
    } finally {
      if (saved === undefined) delete process.env.FFMPEG_PATH; else process.env.FFMPEG_PATH = saved;
    }
    await assert.rejects(probeVideo(join(dir, 'nothing.mp4')), /no such video/);
  } finally {
    await rm(dir, { recursive: true });
  }
});
