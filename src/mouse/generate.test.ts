import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { readCameraFile, writeCameraFile } from '../cameras/opencv-json.ts';
import { trainingRig } from '../cameras/rigs.ts';
import { TINY_CLR_EMBEDS, TINY_PIPECKPTS } from '../pipeline/testing/tiny-weights.ts';
import { generateMouseSamples, pipelineFolder } from './generate.ts';

const root = mkdtempSync(join(tmpdir(), 'fl-mouse-gen-'));
after(() => rmSync(root, { recursive: true, force: true }));

test('a weights path without a pipeline is refused (the fork silently fell back to the human model)', () => {
  assert.throws(() => pipelineFolder(join(root, 'checkpoints/mvdiffusion/mouse_typo')),
    /holds no multi-view diffusion pipeline/);
  assert.equal(pipelineFolder(TINY_PIPECKPTS), TINY_PIPECKPTS);
});

test('generate: --cameras sample writes the source cameras in view-slot order; a rerun keeps finished samples; ' +
  'a broken sample is reported and skipped', async () => {
  const input = join(root, 'in');
  const rig = trainingRig(96, 6, 10); // six cameras at 60° steps, 96² views
  for (const s of ['sample_000000', 'sample_000001']) {
    mkdirSync(join(input, s, 'images'), { recursive: true });
    await writeCameraFile(join(input, s, 'opencv_cameras.json'), { id: s, frames: rig });
    for (let v = 0; v < 6; v++) {
      const background = { r: 40 * v, g: 120, b: 90, alpha: 0.8 };
      const file = join(input, s, `images/cam_${String(v).padStart(3, '0')}.png`);
      await sharp({ create: { width: 96, height: 96, channels: 4, background } }).png().toFile(file);
    }
  }
  mkdirSync(join(input, 'sample_000002'));
  writeFileSync(join(input, 'data_mouse_val.txt'), `${join(input, 'sample_000001')}\n`);
  const out = join(root, 'out');
  const skipped: string[] = [];
  const opts = {
    weights: TINY_PIPECKPTS, promptEmbeds: TINY_CLR_EMBEDS, inputDir: input, outputDir: out, referenceView: 2,
    cameras: 'sample' as const, steps: 1, threads: 2, onSkip: (n: string, why: string) => skipped.push(`${n}: ${why}`),
  };
  const r = await generateMouseSamples(opts);
  assert.deepEqual([r.samples, r.kept, r.skipped, r.imageSize], [2, 0, 1, 64]);
  assert.match(skipped.join('\n'), /sample_000002: cannot read opencv_cameras\.json/);
  const file = await readCameraFile(join(out, 'sample_000000/opencv_cameras.json'));
  file.frames.forEach((f, slot) => {
    const src = rig[(2 + slot) % 6]!;
    assert.equal(f.camera.width, 64);
    assert.ok(Math.abs(f.camera.fx - (src.fx * 64) / 96) < 1e-9);
    const want = `slot ${slot} shows view ${(2 + slot) % 6}`;
    f.camera.w2c.forEach((v, k) => assert.ok(Math.abs(v - src.w2c[k]!) < 1e-9, want));
  });
  assert.deepEqual(file.extra, { source_sample: 'sample_000000', reference_view: 2, cameras: 'sample',
    views: ['front', 'front_right', 'right', 'back', 'left', 'front_left'] });
  const written = statSync(join(out, 'sample_000000/images/cam_000.png')).mtimeMs;
  const again = await generateMouseSamples({ ...opts, onSkip: () => {} });
  assert.deepEqual([again.samples, again.kept], [0, 2]);
  assert.equal(statSync(join(out, 'sample_000000/images/cam_000.png')).mtimeMs, written);
  await assert.rejects(generateMouseSamples({ ...opts, referenceView: 6, outputDir: join(root, 'out6') }),
    /no sample .* could be read/);
});
