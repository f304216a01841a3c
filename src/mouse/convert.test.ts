/**
 * `facelift mouse convert` against the truth: a procedural mouse rendered through a numpy-written 6-camera
 * calibration into raw-format videos and masks, converted, then rendered again through the cameras the converter
 * wrote — the silhouettes must land on the written masks in every view. The fork's cameras (intrinsics only rescaled
 * to the output size, world left in raw units) fail the same check.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { parseCameraJson } from '../cameras/opencv-json.ts';
import { centerAlign } from './center-align.ts';
import { convertRecording } from './convert.ts';
import { det3, intrinsicsOf, mulT, type Mat3, type Vec3 } from './geometry.ts';
import type { RigCamera } from './rig.ts';
import { RAW_SIZE, mouseAt, renderMouse, writeRawRecording } from './testing/raw-recording.ts';

const root = mkdtempSync(join(tmpdir(), 'facelift-mouse-'));
const raw = join(root, 'markerless_mouse_1_nerf');
let rig: RigCamera[];
before(async () => {
  rig = await writeRawRecording(raw, 10);
});
after(() => rmSync(root, { recursive: true, force: true }));

async function alphaOf(file: string): Promise<{ alpha: Uint8Array; size: number }> {
  const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 4, `${file} is RGBA`);
  const alpha = new Uint8Array(info.width * info.height);
  for (let p = 0; p < alpha.length; p++) alpha[p] = data[4 * p + 3]!;
  return { alpha, size: info.width };
}

function iou(a: Uint8Array, b: Uint8Array): number {
  let inter = 0, union = 0;
  for (let p = 0; p < a.length; p++) {
    const x = a[p]! > 127, y = b[p]! > 127;
    if (x && y) inter++;
    if (x || y) union++;
  }
  return union ? inter / union : 1;
}

test('convert: every view of every sample — the mouse rendered through the written camera lands on the written mask', { timeout: 120_000 }, async (t) => {
  const out = join(root, 'data_mouse');
  const report = await convertRecording({ inputDir: raw, outputDir: out, frameInterval: 3, targetSize: 128, targetRatio: 0.6 });
  assert.equal(report.samples, 4); // frames 0, 3, 6, 9
  const train = readFileSync(report.train, 'utf8').trim().split('\n');
  const val = readFileSync(report.val, 'utf8').trim().split('\n');
  assert.equal(train.length + val.length, 4);
  assert.ok(val.at(-1)!.endsWith('sample_000003'), 'the last samples in time validate');
  let worstOurs = 1, bestFork = 0;
  for (const dir of [...train, ...val]) {
    const cams = parseCameraJson(readFileSync(join(dir, 'opencv_cameras.json'), 'utf8'));
    const extra = cams.extra as { source_frame: number; world_centre: Vec3; world_scale: number };
    const parts = mouseAt(extra.source_frame);
    // One scale per sample: the mean camera distance is 2.7.
    const dists = cams.frames.map((f) => {
      const w = f.camera.w2c;
      const R = [w[0], w[1], w[2], w[4], w[5], w[6], w[8], w[9], w[10]] as Mat3;
      assert.ok(Math.abs(det3(R) - 1) < 1e-9, 'proper rotations');
      const c = mulT(R, [w[3]!, w[7]!, w[11]!]);
      return Math.hypot(...c);
    });
    assert.ok(Math.abs(dists.reduce((a, b) => a + b) / dists.length - 2.7) < 1e-9);
    for (const [i, f] of cams.frames.entries()) {
      const { alpha, size } = await alphaOf(join(dir, f.filePath!));
      const c = f.camera, w = c.w2c;
      const R = [w[0], w[1], w[2], w[4], w[5], w[6], w[8], w[9], w[10]] as Mat3;
      const T: Vec3 = [w[3]!, w[7]!, w[11]!];
      const ours = renderMouse({ fx: c.fx, fy: c.fy, cx: c.cx, cy: c.cy }, R, T, size, size, parts,
        { centre: extra.world_centre, scale: extra.world_scale }).mask;
      worstOurs = Math.min(worstOurs, iou(ours, alpha));
      // The fork: K rescaled by size/W and size/H, the crop's scale and shift forgotten, raw world.
      const k = intrinsicsOf(rig[i]!.K);
      const sx = size / RAW_SIZE.width, sy = size / RAW_SIZE.height;
      const fork = renderMouse({ fx: k.fx * sx, fy: k.fy * sy, cx: k.cx * sx, cy: k.cy * sy }, rig[i]!.R, rig[i]!.T, size, size, parts).mask;
      bestFork = Math.max(bestFork, iou(fork, alpha));
    }
  }
  t.diagnostic(`IoU: written cameras ≥ ${worstOurs.toFixed(3)}; the fork's ≤ ${bestFork.toFixed(3)}`);
  assert.ok(worstOurs >= 0.95, `worst IoU of the written cameras ${worstOurs.toFixed(3)}`);
  assert.ok(bestFork < 0.9, `the fork's cameras should miss; best IoU ${bestFork.toFixed(3)}`);
});

test('center-align (target ratio 0.7): re-framed views, cameras moved with them; cameras copied unchanged miss', { timeout: 120_000 }, async (t) => {
  const out = join(root, 'data_mouse_centered');
  const report = await centerAlign({ inputDir: join(root, 'data_mouse'), outputDir: out, targetRatio: 0.7 });
  assert.deepEqual(report, { samples: 4, skipped: 0 });
  const lists = readFileSync(join(out, 'data_mouse_train.txt'), 'utf8').trim().split('\n');
  assert.ok(lists.every((l) => l.startsWith(out)), 'split lists point at the aligned samples');
  let worst = 1, bestCopied = 0;
  for (const name of ['sample_000000', 'sample_000001', 'sample_000002', 'sample_000003']) {
    const aligned = parseCameraJson(readFileSync(join(out, name, 'opencv_cameras.json'), 'utf8'));
    const before = parseCameraJson(readFileSync(join(root, 'data_mouse', name, 'opencv_cameras.json'), 'utf8'));
    const extra = aligned.extra as { source_frame: number; world_centre: Vec3; world_scale: number };
    const parts = mouseAt(extra.source_frame);
    for (const [i, f] of aligned.frames.entries()) {
      const { alpha, size } = await alphaOf(join(out, name, f.filePath!));
      const render = (c: typeof f.camera) => {
        const w = c.w2c;
        const R = [w[0], w[1], w[2], w[4], w[5], w[6], w[8], w[9], w[10]] as Mat3;
        return renderMouse({ fx: c.fx, fy: c.fy, cx: c.cx, cy: c.cy }, R, [w[3]!, w[7]!, w[11]!], size, size, parts,
          { centre: extra.world_centre, scale: extra.world_scale }).mask;
      };
      worst = Math.min(worst, iou(render(f.camera), alpha));
      bestCopied = Math.max(bestCopied, iou(render(before.frames[i]!.camera), alpha));
    }
  }
  t.diagnostic(`IoU: moved cameras ≥ ${worst.toFixed(3)}; copied cameras ≤ ${bestCopied.toFixed(3)}`);
  assert.ok(worst >= 0.95, `worst IoU ${worst.toFixed(3)}`);
  assert.ok(bestCopied < 0.9, `unchanged cameras should miss; best IoU ${bestCopied.toFixed(3)}`);
});

test('facelift mouse convert / center-align with the seed README\'s flags', { timeout: 120_000 }, () => {
  const bin = new URL('../../bin/facelift.js', import.meta.url).pathname;
  const run = (args: string[]) => spawnSync(process.execPath, [bin, 'mouse', ...args], { encoding: 'utf8' });
  const conv = run(['convert', '--input_dir', raw, '--output_dir', join(root, 'cli'), '--frame_interval', '5', '--target_size', '64',
    '--target_ratio', '0.6', '--max_samples', '1', '--start_sample', '7']);
  assert.equal(conv.status, 0, conv.stderr);
  assert.match(conv.stderr, /1 samples in/);
  assert.ok(existsSync(join(root, 'cli', 'sample_000007', 'images', 'cam_005.png')));
  const al = run(['center-align', '--input-dir', join(root, 'cli'), '--output-dir', join(root, 'cli-c'), '--target_ratio', '0.6']);
  assert.equal(al.status, 0, al.stderr);
  assert.ok(existsSync(join(root, 'cli-c', 'sample_000007', 'opencv_cameras.json')));
  const bad = run(['convert', '--input_dir', join(root, 'cli'), '--output_dir', join(root, 'x')]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /new_cam\.pkl: it does not exist/);
});

test('convert refuses broken recordings in plain words', async () => {
  await assert.rejects(convertRecording({ inputDir: join(root, 'nowhere'), outputDir: join(root, 'x') }), /cannot read the calibration .*new_cam\.pkl: it does not exist/);
});
