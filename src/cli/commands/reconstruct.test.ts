import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeCameraFile } from '../../cameras/opencv-json.ts';
import { planarToImage, readImage, writePng } from '../../io/image.ts';
import { probeVideo } from '../../io/video.ts';
import { readPly } from '../../splat/ply.ts';
import { filterGaussians, FACELIFT_FILTERS } from '../../splat/filters.ts';
import { loadGslrmConfig } from '../../lrm/config.ts';
import { loadGslrmWeights } from '../../lrm/weights.ts';
import { reconstruct } from '../../lrm/reconstruct.ts';
import { listViewFiles, readViews } from '../../lrm/views.ts';
import { GOLDEN_DIR, readGoldenSafetensors, f32, assertClose } from '../../lrm/testing/golden.ts';
import { goldenCameras } from '../../lrm/testing/cameras.ts';

const run = promisify(execFile);
const BIN = new URL('../../../bin/facelift.js', import.meta.url).pathname;
const CKPT = GOLDEN_DIR + 'ckpt_0000000000000042.pt';
const CONFIG = GOLDEN_DIR + 'config.yaml';

test('facelift reconstruct: golden tiny views → PLY (all / filtered), output.png, turntable; one-line errors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'reconstruct-cli-'));
  try {
    const inputs = await readGoldenSafetensors('inputs.safetensors');
    const cams = goldenCameras(inputs);
    const image = f32(inputs, 'image');
    const views = join(dir, 'views');
    await mkdir(views);
    for (let v = 0; v < 4; v++) await writePng(join(views, `cam_00${v}.png`), planarToImage(image.subarray(v * 3072, (v + 1) * 3072), 32, 32));
    const camJson = join(dir, 'opencv_cameras.json');
    await writeCameraFile(camJson, { id: 'tiny', frames: cams.map((camera) => ({ camera, extra: {} })) });
    const common = ['reconstruct', '--views', views, '--cameras', camJson, '--checkpoint', CKPT, '--config', CONFIG, '--threads', '1', '--frames', '3', '--json'];

    // What the library gives for the same 8-bit views.
    const cfg = loadGslrmConfig(CONFIG);
    const want = (await reconstruct(await readViews(listViewFiles(views)), cams, { config: cfg, weights: await loadGslrmWeights(CKPT, cfg) }, { threads: 1 })).gaussians;

    const all = JSON.parse((await run(process.execPath, [BIN, ...common, '--no-filter', '-o', join(dir, 'all')])).stdout) as { gaussians: number; written: number };
    assert.deepEqual([all.gaussians, all.written], [4098, 4098]);
    const ply = await readPly(join(dir, 'all', 'gaussians.ply'));
    assertClose(ply.means, want.means, 1e-5, 1e-5, 'PLY xyz (model order)');
    assertClose(ply.opacities, want.opacities, 1e-5, 1e-5, 'PLY opacity');
    const png = await readImage(join(dir, 'all', 'output.png'));
    assert.deepEqual([png.width, png.height, png.channels], [4 * 32, 32, 3]);
    const info = await probeVideo(join(dir, 'all', 'turntable.mp4'));
    assert.deepEqual([info.frames, info.width, info.height], [3, 32, 32]);

    const filtered = JSON.parse((await run(process.execPath, [BIN, ...common, '-o', join(dir, 'filtered')])).stdout) as { written: number };
    const kept = filterGaussians(want, FACELIFT_FILTERS).gaussians;
    assert.equal(filtered.written, kept.count);
    assert.ok(kept.count > 0 && kept.count < 4098, `the filter keeps some but not all (${kept.count})`);
    assert.equal((await readPly(join(dir, 'filtered', 'gaussians.ply'))).count, kept.count);

    // Errors: camera count, image size, another architecture's checkpoint.
    const fail = async (args: string[], msg: RegExp) => {
      const e = await run(process.execPath, [BIN, ...args]).then(() => null, (err: { code: number; stderr: string }) => err);
      assert.ok(e, `expected ${args.join(' ')} to fail`);
      assert.equal(e.code, 1);
      assert.match(e.stderr, msg);
      assert.equal(e.stderr.trim().split('\n').length, 1, 'one line');
    };
    const three = join(dir, 'three.json');
    await writeCameraFile(three, { id: 'x', frames: cams.slice(0, 3).map((camera) => ({ camera, extra: {} })) });
    await fail([...common, '-o', join(dir, 'e1'), '--cameras', three], /^facelift: .*three\.json has 3 camera frame\(s\) but the views folder has 4 image\(s\)/);
    const small = join(dir, 'small');
    await mkdir(small);
    for (let v = 0; v < 4; v++) await writePng(join(small, `cam_00${v}.png`), { width: 16, height: 16, channels: 3, data: new Uint8Array(768).fill(200) });
    await fail([...common, '-o', join(dir, 'e2'), '--views', small], /^facelift: views are 16×16, but the GS-LRM config expects 32×32/);
    await fail([...common, '-o', join(dir, 'e3'), '--config', new URL('../../lrm/configs/gslrm.yaml', import.meta.url).pathname],
      /^facelift: .*ckpt_0000000000000042\.pt does not match the GS-LRM configuration: missing key transformer_layers\.2\.norm1\.weight.*gaussian_position_embeddings has shape \[2, 64\], expected \[2, 1024\]/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('camerasForViews: by file_path when every frame has one, else in order; counts must match', async () => {
  const { camerasForViews } = await import('./reconstruct.ts');
  const cams = goldenCameras(await readGoldenSafetensors('inputs.safetensors'));
  const files = ['/v/cam_000.png', '/v/cam_001.png', '/v/cam_002.png'];
  const named = [2, 0, 1].map((i) => ({ camera: cams[i], filePath: `images/cam_00${i}.png`, extra: {} }));
  assert.deepEqual(camerasForViews(named, files, 'c.json'), [cams[0], cams[1], cams[2]]);
  const plain = [2, 0, 1].map((i) => ({ camera: cams[i], extra: {} }));
  assert.deepEqual(camerasForViews(plain, files, 'c.json'), [cams[2], cams[0], cams[1]]);
  const wrong = named.map((f, i) => (i === 0 ? { ...f, filePath: 'images/cam_009.png' } : f));
  assert.throws(() => camerasForViews(wrong, files, 'c.json'), /c\.json has no frame whose file_path is cam_002\.png/);
  assert.throws(() => camerasForViews(plain.slice(1), files, 'c.json'), /c\.json has 2 camera frame\(s\) but the views folder has 3 image\(s\)/);
});
