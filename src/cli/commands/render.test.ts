import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeCameraFile } from '../../cameras/opencv-json.ts';
import { trainingRig } from '../../cameras/rigs.ts';
import { planarToImage, readImage } from '../../io/image.ts';
import { probeVideo } from '../../io/video.ts';
import { writePly } from '../../splat/ply.ts';
import { rasterize } from '../../splat/rasterize.ts';
import { headScene } from '../../splat/testing/scene.ts';

const run = promisify(execFile);
const BIN = new URL('../../../bin/facelift.js', import.meta.url).pathname;

test('facelift render: PNGs for an opencv_cameras.json equal the rasterizer; turntable MP4; one-line errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'render-cli-'));
  try {
    const g = headScene(3000, 8);
    const ply = join(dir, 'g.ply');
    await writePly(ply, g);
    const cams = trainingRig(40, 32).filter((_, i) => i === 0 || i === 24).map((c) => ({ ...c, height: 30, cy: 15 }));
    await writeCameraFile(join(dir, 'cams.json'), { id: 't', frames: cams.map((camera, i) => ({ camera, filePath: `images/cam_${i}.png`, extra: {} })) });
    const { stdout } = await run(process.execPath, [BIN, 'render', '--ply', ply, '--cameras', join(dir, 'cams.json'), '-o', join(dir, 'out'), '--threads', '1', '--json']);
    const summary = JSON.parse(stdout) as { gaussians: number; files: string[] };
    assert.equal(summary.gaussians, 3000);
    assert.deepEqual(summary.files, [join(dir, 'out', 'cam_0.png'), join(dir, 'out', 'cam_1.png')]);
    for (let i = 0; i < 2; i++) {
      const png = await readImage(summary.files[i]);
      const want = planarToImage(rasterize(g, cams[i]).rgb, 40, 30);
      assert.deepEqual(png, want);
    }
    await run(process.execPath, [BIN, 'render', '--ply', ply, '--turntable', '6', '--resolution', '32', '-o', join(dir, 'tt'), '--threads', '2']);
    const info = await probeVideo(join(dir, 'tt', 'turntable.mp4'));
    assert.deepEqual([info.frames, info.width, info.height, info.pixFmt], [6, 32, 32, 'yuv420p']);
    for (const [args, msg] of [
      [['--ply', join(dir, 'none.ply'), '-o', dir], /^facelift: cannot read .*none\.ply/],
      [['--ply', ply, '--turntable', '3', '--cameras', join(dir, 'cams.json'), '-o', dir], /^facelift: give either --cameras or --turntable, not both\n$/],
      [['--ply', join(dir, 'cams.json'), '-o', dir], /^facelift: .*cams\.json: not a PLY file/],
    ] as const) {
      await assert.rejects(run(process.execPath, [BIN, 'render', ...args]), (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1);
        assert.match(e.stderr, msg);
        return true;
      });
    }
  } finally {
    await rm(dir, { recursive: true });
  }
});
