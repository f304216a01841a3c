import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Camera } from './camera.ts';
import { faceliftViews, trainingRig, turntableCameras } from './rigs.ts';
import { formatCameraJson, parseCameraJson, readCameraFile, writeCameraFile } from './opencv-json.ts';
import { UserError } from '../util/errors.ts';

const centre = (c: Camera) => [c.c2w[3], c.c2w[7], c.c2w[11]];
function project(c: Camera, p: number[]): [number, number, number] {
  const m = c.w2c;
  const X = m[0] * p[0] + m[1] * p[1] + m[2] * p[2] + m[3];
  const Y = m[4] * p[0] + m[5] * p[1] + m[6] * p[2] + m[7];
  const Z = m[8] * p[0] + m[9] * p[1] + m[10] * p[2] + m[11];
  return [c.fx * X / Z + c.cx, c.fy * Y / Z + c.cy, Z];
}
const close = (a: number[], b: number[], tol = 1e-3) => a.every((v, i) => Math.abs(v - b[i]) <= tol);

test('the 6 FaceLift views: centres of spec pipeline.md §5, intrinsics of the official json, right view sees the nose on the right', () => {
  const v = faceliftViews();
  const want = [[0, -2.7, 0], [-1.909, -1.909, 0], [-2.7, 0, 0], [0, 2.7, 0], [2.7, 0, 0], [1.909, -1.909, 0]];
  v.forEach((c, i) => assert.ok(close(centre(c), want[i]), `view ${i}: ${centre(c)}`));
  assert.ok(Math.abs(v[0].fx - 548.9937744140625) < 1e-4 && v[0].cx === 256 && v[0].width === 512);
  for (const c of v) assert.ok(close(project(c, [0, 0, 0]).slice(0, 2), [256, 256], 1e-9));
  // image-up is world +Z: a point above the origin appears above the centre.
  assert.ok(project(v[0], [0, 0, 0.5])[1] < 256);
  // the subject faces −Y; in the "right" view its nose (0, −1, 0) is on the image's right.
  assert.ok(project(v[2], [0, -1, 0])[0] > 256);
});

test('turntable: frame 0 is the front view, then the camera moves towards +X; 2.4° steps for 150 frames', () => {
  const t = turntableCameras(150, 64);
  assert.equal(t.length, 150);
  assert.ok(close(centre(t[0]), [0, -2.7, 0], 1e-9));
  assert.ok(centre(t[1])[0] > 0);
  const a1 = Math.atan2(centre(t[1])[1], centre(t[1])[0]) * 180 / Math.PI;
  assert.ok(Math.abs(a1 - (-90 + 2.4)) < 1e-9);
  assert.ok(close(centre(t[75]), [0, 2.7, 0], 1e-9));
  assert.throws(() => turntableCameras(0), RangeError);
});

test('training rig: 32 views at elevation +20°, cam_000 on +X, cam_024 on −Y', () => {
  const r = trainingRig(512);
  assert.equal(r.length, 32);
  for (const c of r) assert.ok(Math.abs(centre(c)[2] - 0.9235) < 1e-3);
  assert.ok(close(centre(r[0]), [2.7 * Math.cos(20 * Math.PI / 180), 0, 0.9235]));
  assert.ok(close(centre(r[24]), [0, -2.7 * Math.cos(20 * Math.PI / 180), 0.9235]));
});

test('opencv_cameras.json: write → read round trip keeps cameras, file paths and extra fields', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cams-'));
  try {
    const cams = trainingRig(256, 4);
    const path = join(dir, 'opencv_cameras.json');
    await writeCameraFile(path, { id: 'sample_000', frames: cams.map((camera, i) => ({ camera, filePath: `images/cam_00${i}.png`, extra: { blender_camera_name: `lrm_cam.00${i}` } })), extra: { camera_type: 'pinhole' } });
    const back = await readCameraFile(path);
    assert.equal(back.id, 'sample_000');
    assert.deepEqual(back.extra, { camera_type: 'pinhole' });
    back.frames.forEach((f, i) => {
      assert.equal(f.filePath, `images/cam_00${i}.png`);
      assert.deepEqual(f.extra, { blender_camera_name: `lrm_cam.00${i}` });
      for (let k = 0; k < 16; k++) {
        assert.ok(Math.abs(f.camera.w2c[k] - cams[i].w2c[k]) < 1e-12);
        assert.ok(Math.abs(f.camera.c2w[k] - cams[i].c2w[k]) < 1e-12);
      }
      assert.equal(f.camera.fx, cams[i].fx);
    });
    // the spec's illustrative example decodes to a camera at (0, −3, 0)
    const ex = parseCameraJson(JSON.stringify({ id: 'x', frames: [{ w: 512, h: 512, fx: 600, fy: 600, cx: 256, cy: 256, w2c: [[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 3], [0, 0, 0, 1]] }] }));
    assert.ok(close(centre(ex.frames[0].camera), [0, -3, 0], 1e-12));
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('opencv_cameras.json: malformed files give errors naming the frame and field', () => {
  const good = JSON.parse(formatCameraJson({ id: 'a', frames: trainingRig(64, 1) }));
  const bad = (mut: (f: Record<string, unknown>) => void, re: RegExp) => {
    const doc = structuredClone(good);
    mut(doc.frames[0]);
    assert.throws(() => parseCameraJson(JSON.stringify(doc), 'cams.json'), (e: unknown) => e instanceof UserError && re.test(e.message));
  };
  bad((f) => { (f.w2c as number[][])[0] = (f.w2c as number[][])[0].map((x) => -x); }, /frame 0: .*determinant -1|frame 0: .*orthonormal/);
  bad((f) => { (f.w2c as number[][])[0][1] *= 2; }, /frame 0: w2c's rotation is not orthonormal/);
  bad((f) => { f.fx = 'x'; }, /frame 0: "fx" must be a finite number/);
  bad((f) => { f.w = 0; }, /"w" must be > 0/);
  bad((f) => { f.w2c = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]; }, /4×4/);
  bad((f) => { (f.w2c as unknown[][])[1][3] = null; }, /w2c\[1\]\[3\] must be a finite number/);
  bad((f) => { (f.w2c as number[][])[3] = [0, 0, 1, 1]; }, /last row/);
  assert.throws(() => parseCameraJson('{"frames": []}', 'c.json'), /frames" is empty/);
  assert.throws(() => parseCameraJson('{nope', 'c.json'), /not valid JSON/);
  // a reflection (det −1) with orthonormal rows
  const refl = structuredClone(good);
  refl.frames[0].w2c[0] = refl.frames[0].w2c[0].map((x: number, k: number) => (k < 3 ? -x : x));
  assert.throws(() => parseCameraJson(JSON.stringify(refl), 'c.json'), /determinant -1/);
});
