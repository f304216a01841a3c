import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameStream, Mp4Writer, decodeFrames, ffmpegPath, probeVideo } from './video.ts';

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

test('FrameStream: one decoding pass is frame-accurate (index burned into the pixels, x264 with B-frames), every k-th too', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'facelift-frames-'));
  try {
    const W = 96, H = 32, N = 47;
    const path = join(dir, 'count.mp4');
    const w = Mp4Writer.open(path, { width: W, height: H });
    // 6 bits of the frame index as black/white 16×32 blocks: survives compression.
    for (let i = 0; i < N; i++) {
      const rgba = new Uint8Array(W * H * 4);
      for (let p = 0; p < W * H; p++) {
        const bit = (i >> Math.floor((p % W) / 16)) & 1;
        rgba.fill(bit ? 255 : 0, 4 * p, 4 * p + 3);
        rgba[4 * p + 3] = 255;
      }
      await w.write(rgba);
    }
    await w.close();
    const read = (f: Uint8Array) => [0, 1, 2, 3, 4, 5].reduce((acc, b) => acc | ((f[8 * W + 16 * b + 8]! > 127 ? 1 : 0) << b), 0);
    for (const every of [1, 5]) {
      const s = await FrameStream.open(path, 'gray', every);
      const seen: number[] = [];
      for (let f = await s.next(); f; f = await s.next()) seen.push(read(f));
      assert.deepEqual(seen, Array.from({ length: Math.ceil(N / every) }, (_, k) => k * every), `every ${every}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
