import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import type { Camera } from '../cameras/camera.ts';
import { readCameraFile } from '../cameras/opencv-json.ts';
import { faceliftViews } from '../cameras/rigs.ts';
import { allocGaussians, SH_C0, type GaussianSet } from '../splat/gaussians.ts';
import { readPly } from '../splat/ply.ts';
import { rasterize } from '../splat/rasterize.ts';
import { valIndices, writeHeadDataset, type HeadWritten } from './dataset.ts';
import { HeadPool } from './head-pool.ts';
import { portraitCamera, writePortraits } from './portraits.ts';

const RES = 64;
const SPACING = 0.02;

async function collect(dir: string, count: number, layouts: Array<'gslrm' | 'mvdiffusion'>, valFraction = 0.5, pool?: HeadPool): Promise<HeadWritten[]> {
  const out: HeadWritten[] = [];
  for await (const w of writeHeadDataset({ outDir: dir, count, seed: 3, resolution: RES, layouts, valFraction, spacing: SPACING, pool })) out.push(w);
  return out;
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...await listFiles(p));
    else out.push(p);
  }
  return out.sort();
}

async function decode(path: string): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

function project(cam: Camera, p: readonly number[]): [number, number, number] {
  const m = cam.w2c;
  const X = m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3];
  const Y = m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7];
  const Z = m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11];
  return [cam.fx * X / Z + cam.cx, cam.fy * Y / Z + cam.cy, Z];
}

/** The head plus one small, bright marker Gaussian at `at`. */
function withMarker(g: GaussianSet, at: readonly number[]): GaussianSet {
  const out = allocGaussians(g.count + 1, 0);
  out.means.set(g.means);
  out.scales.set(g.scales);
  out.rotations.set(g.rotations);
  out.opacities.set(g.opacities);
  out.sh.set(g.sh);
  const i = g.count;
  out.means.set(at, 3 * i);
  out.scales.fill(Math.log(0.004), 3 * i, 3 * i + 3);
  out.opacities[i] = 6;
  out.sh.set([(1 - 0.5) / SH_C0, (0 - 0.5) / SH_C0, (1 - 0.5) / SH_C0], 3 * i);
  return out;
}

test('gslrm + mvdiffusion layouts: files, list files, cameras, alpha; nose tip lands where the renderer draws it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'synth-'));
  try {
    const heads = await collect(dir, 2, ['gslrm', 'mvdiffusion']);
    const files = (await listFiles(dir)).map((f) => relative(dir, f));
    for (const s of ['sample_000000', 'sample_000001']) {
      for (let i = 0; i < 32; i++) assert.ok(files.includes(`gslrm/${s}/images/cam_${String(i).padStart(3, '0')}.png`));
      assert.ok(files.includes(`gslrm/${s}/opencv_cameras.json`));
      assert.ok(files.includes(`gslrm/${s}/gaussians.ply`) && files.includes(`gslrm/${s}/head.json`));
      assert.ok(!files.includes(`mvdiffusion/${s}/gaussians.ply`), 'the PLY is written once per head');
      for (let i = 0; i < 6; i++) assert.ok(files.includes(`mvdiffusion/${s}/cam_${String(i).padStart(3, '0')}.png`));
      assert.ok(!files.includes(`mvdiffusion/${s}/cam_006.png`));
    }
    // List files: absolute sample dirs, newline separated, no trailing newline; last sample is val.
    assert.equal(await readFile(join(dir, 'gslrm/data_gslrm_train.txt'), 'utf8'), join(dir, 'gslrm/sample_000000'));
    assert.equal(await readFile(join(dir, 'gslrm/data_gslrm_val.txt'), 'utf8'), join(dir, 'gslrm/sample_000001'));
    assert.equal(await readFile(join(dir, 'mvdiffusion/data_mvdiff_train.txt'), 'utf8'), join(dir, 'mvdiffusion/sample_000000'));
    assert.equal(await readFile(join(dir, 'mvdiffusion/data_mvdiff_val.txt'), 'utf8'), join(dir, 'mvdiffusion/sample_000001'));

    // The ground-truth PLY reads back as the generated set.
    const ply = await readPly(join(dir, 'gslrm/sample_000001/gaussians.ply'));
    const g1 = heads[1].head.gaussians;
    assert.equal(ply.count, g1.count);
    assert.deepEqual(ply.means, g1.means);
    assert.deepEqual(ply.opacities, g1.opacities);

    // Cameras: readCameraFile validates the schema, orthonormal w2c with det +1.
    const cf = await readCameraFile(join(dir, 'gslrm/sample_000000/opencv_cameras.json'));
    const raw = JSON.parse(await readFile(join(dir, 'gslrm/sample_000000/opencv_cameras.json'), 'utf8'));
    assert.equal(cf.id, 'sample_000000');
    assert.equal(cf.frames.length, 32);
    const fx = RES / (2 * Math.tan((25 * Math.PI) / 180));
    cf.frames.forEach((f, i) => {
      const c = f.camera;
      assert.equal(f.filePath, `images/cam_${String(i).padStart(3, '0')}.png`);
      assert.equal(raw.frames[i].blender_camera_name, `lrm_cam.${String(i).padStart(3, '0')}`);
      assert.ok(Math.abs(c.fx - fx) < 1e-9 && c.cx === RES / 2 && c.width === RES);
      const centre = [c.c2w[3], c.c2w[7], c.c2w[11]];
      assert.deepEqual(raw.frames[i].blender_camera_location.map((v: number) => +v.toFixed(9)), centre.map((v) => +v.toFixed(9)));
      assert.ok(Math.abs(Math.hypot(...centre) - 2.7) < 1e-9, 'radius 2.7');
      assert.ok(Math.abs(Math.asin(centre[2] / 2.7) * 180 / Math.PI - 20) < 1e-6, 'elevation 20°');
      const az = ((Math.atan2(centre[1], centre[0]) * 180) / Math.PI + 360) % 360;
      assert.ok(Math.abs(az - i * 11.25) < 1e-6 || Math.abs(az - i * 11.25 + 360) < 1e-6, `azimuth ${az} for cam ${i}`);
      // Looks at the origin: it projects to the principal point, in front of the camera, with no roll.
      const [u, v, z] = project(c, [0, 0, 0]);
      assert.ok(Math.abs(u - c.cx) < 1e-9 && Math.abs(v - c.cy) < 1e-9 && Math.abs(z - 2.7) < 1e-9);
      const [, vUp] = project(c, [0, 0, 0.1]);
      assert.ok(vUp < c.cy, 'world +Z is image-up');
    });

    // Images: straight RGBA, sane coverage in every view, RGB = 0 where alpha = 0.
    for (const s of ['gslrm/sample_000000/images', 'mvdiffusion/sample_000001']) {
      for (const f of files.filter((x) => x.startsWith(s) && x.endsWith('.png'))) {
        const img = await decode(join(dir, f));
        assert.equal(img.channels, 4);
        assert.equal(img.width, RES);
        let cover = 0, soft = 0;
        for (let i = 0; i < RES * RES; i++) {
          const a = img.data[4 * i + 3];
          if (a >= 128) cover++;
          if (a > 0 && a < 255) soft++;
          if (a === 0) assert.ok(img.data[4 * i] === 0 && img.data[4 * i + 1] === 0 && img.data[4 * i + 2] === 0);
        }
        const frac = cover / (RES * RES);
        assert.ok(frac > 0.15 && frac < 0.6, `${f}: foreground ${frac}`);
        assert.ok(soft > 0, `${f}: soft alpha edges`);
        // The border rows/columns are background (the head sits inside the frame).
        for (let k = 0; k < RES; k++) assert.equal(img.data[4 * k + 3], 0, `${f}: top row is empty`);
      }
    }

    // Landmark: the nose tip, projected through the *written* cameras, is where the renderer draws a marker there,
    // and the rendered surface depth at that pixel is the nose tip's depth.
    const head = heads[0].head;
    const tip = head.landmarks.noseTip;
    for (const i of [20, 22, 24, 26, 28]) {
      const cam = cf.frames[i].camera;
      // The marker sits on the camera ray through the nose tip, 0.03 in front of it (so no skin covers it).
      const ray = [cam.c2w[3] - tip[0], cam.c2w[7] - tip[1], cam.c2w[11] - tip[2]];
      const len = Math.hypot(ray[0], ray[1], ray[2]);
      const marker = withMarker(head.gaussians, tip.map((t, k) => t + (0.03 * ray[k]) / len));
      const [u, v, zTip] = project(cam, tip);
      const base = rasterize(head.gaussians, cam);
      const marked = rasterize(marker, cam);
      let w = 0, su = 0, sv = 0;
      for (let y = 0; y < RES; y++) {
        for (let x = 0; x < RES; x++) {
          const p = y * RES + x;
          const d = Math.abs(marked.rgb[RES * RES + p] - base.rgb[RES * RES + p]); // the green channel drops to 0
          w += d; su += d * (x + 0.5); sv += d * (y + 0.5);
        }
      }
      assert.ok(w > 0.1, `cam ${i}: marker visible`);
      assert.ok(Math.hypot(su / w - u, sv / w - v) < 0.1, `cam ${i}: marker drawn at (${su / w}, ${sv / w}), projected (${u}, ${v})`);
      const p = Math.floor(v) * RES + Math.floor(u);
      const depth = base.depth[p] / base.alpha[p];
      assert.ok(Math.abs(depth - zTip) < 0.03, `cam ${i}: surface depth ${depth} vs nose tip ${zTip}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('same seed → byte-identical files (heads built in a worker or on this thread); one sample is in train and val', async () => {
  const dirs = [await mkdtemp(join(tmpdir(), 'synth-a-')), await mkdtemp(join(tmpdir(), 'synth-b-'))];
  try {
    await collect(dirs[0], 1, ['mvdiffusion', 'gslrm'], 0.05);
    await collect(dirs[1], 1, ['mvdiffusion', 'gslrm'], 0.05, new HeadPool({ threads: 0 }));
    const [fa, fb] = await Promise.all(dirs.map(listFiles));
    assert.deepEqual(fa.map((f) => relative(dirs[0], f)), fb.map((f) => relative(dirs[1], f)));
    for (let i = 0; i < fa.length; i++) {
      if (fa[i].endsWith('.txt')) continue; // absolute paths differ by folder
      const [a, b] = await Promise.all([readFile(fa[i]), readFile(fb[i])]);
      assert.equal(createHash('sha256').update(a).digest('hex'), createHash('sha256').update(b).digest('hex'), relative(dirs[0], fa[i]));
    }
    const train = await readFile(join(dirs[0], 'gslrm/data_gslrm_train.txt'), 'utf8');
    assert.equal(train, await readFile(join(dirs[0], 'gslrm/data_gslrm_val.txt'), 'utf8'));
    assert.ok((await stat(train)).isDirectory());
  } finally {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});

test('val split: last round(n·f) samples, at least one', () => {
  assert.deepEqual([...valIndices(100, 0.05)], [95, 96, 97, 98, 99]);
  assert.deepEqual([...valIndices(3, 0.05)], [2]);
  assert.deepEqual([...valIndices(1, 0.05)], [0]);
  assert.deepEqual([...valIndices(10, 0)], []);
});

test('portraits: RGB over the recorded background, near-frontal rolled camera', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'synth-p-'));
  try {
    const got = [];
    for await (const w of writePortraits({ outDir: dir, count: 1, seed: 8, resolution: RES, spacing: SPACING })) got.push(w);
    const meta = JSON.parse(await readFile(join(dir, 'portraits.json'), 'utf8'));
    assert.equal(meta.portraits.length, 1);
    const rec = meta.portraits[0];
    assert.ok(Math.abs(rec.pose.yawDeg) <= 15 && Math.abs(rec.pose.rollDeg) <= 6);
    const img = await decode(join(dir, rec.file));
    assert.equal(img.channels, 3);
    const top = rec.background.top.map((c: number) => Math.round(c * 255));
    assert.deepEqual([...img.data.subarray(0, 3)], top, 'top-left pixel is the background');
    // The camera: rotation det +1, looks at the origin, and the roll turns image-up away from world +Z.
    const cam = portraitCamera({ yawDeg: 0, pitchDeg: 0, rollDeg: 30, distance: 2.7 }, RES);
    const [u, v] = project(cam, [0, 0, 0]);
    assert.ok(Math.abs(u - RES / 2) < 1e-9 && Math.abs(v - RES / 2) < 1e-9);
    const [uu, vv] = project(cam, [0, 0, 0.5]);
    const ang = (Math.atan2(uu - u, v - vv) * 180) / Math.PI;
    assert.ok(Math.abs(Math.abs(ang) - 30) < 1e-6, `roll angle ${ang}`);
    const front = faceliftViews(RES)[0];
    assert.ok(got[0].head.gaussians.count > 1000 && front.width === RES);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('--elevations: one ring of 32 views per elevation, in file order; the 0° ring holds the 6 FaceLift cameras', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'synth-rings-'));
  try {
    for await (const w of writeHeadDataset({
      outDir: dir, count: 1, seed: 3, resolution: 32, layouts: ['gslrm'], valFraction: 0, spacing: 0.03, writePly: false, elevations: [0, 20],
    })) assert.equal(w.views.gslrm!.length, 64);
    const frames = (await readCameraFile(join(dir, 'gslrm/sample_000000/opencv_cameras.json'))).frames;
    assert.equal(frames.length, 64);
    assert.equal(frames[63]!.filePath, 'images/cam_063.png');
    // FaceLift's views (front, front_right, right, back, left, front_left) are rig cameras 24, 20, 16, 8, 0, 28.
    faceliftViews(32).forEach((c, k) => {
      const r = frames[[24, 20, 16, 8, 0, 28][k]!]!.camera;
      for (let i = 0; i < 16; i++) assert.ok(Math.abs(r.w2c[i]! - c.w2c[i]!) < 1e-9, `view ${k}`);
    });
    // The 20° ring is the reference's rig: higher than the 0° ring.
    const height = (c: Camera) => -(c.w2c[2]! * c.w2c[3]! + c.w2c[6]! * c.w2c[7]! + c.w2c[10]! * c.w2c[11]!);
    assert.ok(height(frames[40]!.camera) > height(frames[8]!.camera) + 0.5);
    await assert.rejects(writeHeadDataset({ outDir: dir, count: 1, seed: 3, resolution: 32, layouts: ['gslrm'], valFraction: 0, elevations: [] }).next(),
      /elevations must be a non-empty list/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
