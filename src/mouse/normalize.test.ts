import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Camera } from '../cameras/camera.ts';
import { faceliftViews, trainingRig } from '../cameras/rigs.ts';
import { det3, type Mat3, type Vec3 } from './geometry.ts';
import { readRig } from './rig.ts';
import { centrePlaneUp, rigUp, rotationBetween, symmetricEigen, uprightRig } from './normalize.ts';
import { RIG_FIXTURE } from './testing/raw-recording.ts';

/** Pixel of world point x through camera c (continuous coordinates), or null behind it. */
function pixel(c: Camera, x: Vec3): [number, number] | null {
  const w = c.w2c;
  const p = [0, 1, 2].map((r) => w[4 * r]! * x[0] + w[4 * r + 1]! * x[1] + w[4 * r + 2]! * x[2] + w[4 * r + 3]!);
  if (p[2]! <= 0) return null;
  return [(c.fx * p[0]!) / p[2]! + c.cx, (c.fy * p[1]!) / p[2]! + c.cy];
}

const rotate = (Q: Mat3, x: Vec3): Vec3 =>
  [0, 1, 2].map((r) => Q[3 * r]! * x[0] + Q[3 * r + 1]! * x[1] + Q[3 * r + 2]! * x[2]) as Vec3;

/** The same rig seen from a world turned by Q, moved by t and scaled by k: what a raw calibration looks like. */
function tilted(cams: readonly Camera[], Q: Mat3, t: Vec3, k: number): Camera[] {
  return cams.map((c) => {
    const c2w = new Float64Array(16);
    for (let r = 0; r < 3; r++) {
      for (let col = 0; col < 3; col++) {
        c2w[4 * r + col] = Q[3 * r]! * c.c2w[col]! + Q[3 * r + 1]! * c.c2w[4 + col]! + Q[3 * r + 2]! * c.c2w[8 + col]!;
      }
    }
    const p = rotate(Q, [c.c2w[3]!, c.c2w[7]!, c.c2w[11]!]);
    for (let r = 0; r < 3; r++) c2w[4 * r + 3] = k * p[r]! + t[r]!;
    c2w[15] = 1;
    const w2c = new Float64Array(16);
    for (let r = 0; r < 3; r++) for (let col = 0; col < 3; col++) w2c[4 * r + col] = c2w[4 * col + r]!;
    for (let r = 0; r < 3; r++) {
      w2c[4 * r + 3] = -(w2c[4 * r]! * c2w[3]! + w2c[4 * r + 1]! * c2w[7]! + w2c[4 * r + 2]! * c2w[11]!);
    }
    w2c[15] = 1;
    return { ...c, c2w, w2c };
  });
}

test('symmetricEigen: A·v = λ·v for each column, orthonormal vectors', () => {
  const A: Mat3 = [4, 1, -2, 1, 3, 0.5, -2, 0.5, 1];
  const { values, vectors } = symmetricEigen(A);
  for (let k = 0; k < 3; k++) {
    const v: Vec3 = [vectors[k]!, vectors[3 + k]!, vectors[6 + k]!];
    const Av = rotate(A, v);
    for (let r = 0; r < 3; r++) assert.ok(Math.abs(Av[r]! - values[k]! * v[r]!) < 1e-12);
  }
  assert.ok(Math.abs(Math.abs(det3(vectors)) - 1) < 1e-12);
});

test('rotationBetween: proper, takes a to b, also for opposite vectors', () => {
  const pairs = [[[0, 0, 1], [0, 0, 1]], [[1, 0, 0], [0, 0, 1]], [[0.6, 0, 0.8], [0, 0, -1]], [[0, 0, -1], [0, 0, 1]]];
  for (const [a, b] of pairs as Vec3[][]) {
    const R = rotationBetween(a!, b!);
    assert.ok(Math.abs(det3(R) - 1) < 1e-12);
    const Ra = rotate(R, a!);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(Ra[k]! - b![k]!) < 1e-12, `${a} → ${b}`);
  }
});

test("uprightRig leaves FaceLift's own cameras as they are (already Z-up at 2.7)", () => {
  const cams = faceliftViews(64);
  const out = uprightRig(cams, { up: 'z', distance: 2.7 });
  out.forEach((c, i) => c.c2w.forEach((v, k) => assert.ok(Math.abs(v - cams[i]!.c2w[k]!) < 1e-12)));
});

test('uprightRig: a tilted, shifted, scaled rig comes back Z-up at mean distance 2.7, every pixel where it was', () => {
  const rig = trainingRig(64, 12, 20).filter((_, i) => i % 2 === 0).concat(trainingRig(64, 8, -30).slice(0, 3));
  const Q = rotationBetween([0, 0, 1], [0.3, -0.5, Math.sqrt(1 - 0.34)]);
  const raw = tilted(rig, Q, [0.4, -0.2, 0.1], 90);
  const out = uprightRig(raw, { up: 'z', distance: 2.7 });
  const up = rigUp(out)!;
  assert.ok(up[2] > 0.999, `up is +Z (${up})`);
  const mean = out.reduce((s, c) => s + Math.hypot(c.c2w[3]!, c.c2w[7]!, c.c2w[11]!), 0) / out.length;
  assert.ok(Math.abs(mean - 2.7) < 1e-9);
  const rotationOf = (c: Camera) => [0, 1, 2].flatMap((r) => [0, 1, 2].map((k) => c.c2w[4 * r + k]!));
  for (const c of out) assert.ok(Math.abs(det3(rotationOf(c)) - 1) < 1e-9);
  // One similarity of the world for every camera: X ↦ s·Q·X with the rig's up turned to +Z.
  const s = 2.7 / (raw.reduce((a, c) => a + Math.hypot(c.c2w[3]!, c.c2w[7]!, c.c2w[11]!), 0) / raw.length);
  const Qn = rotationBetween(rigUp(raw)!, [0, 0, 1]);
  for (const X of [[0.4, -0.2, 0.1], [10, 5, -3], [-20, 30, 12]] as Vec3[]) {
    const Y = rotate(Qn, X).map((v) => v * s) as Vec3;
    raw.forEach((c, i) => {
      const a = pixel(c, X), b = pixel(out[i]!, Y);
      assert.equal(a === null, b === null);
      if (a && b) assert.ok(Math.hypot(a[0] - b[0], a[1] - b[1]) < 1e-6, `view ${i}: ${a} vs ${b}`);
    });
  }
});

test("the fork's per-camera radial push moves pixels; the uniform scale here does not", () => {
  const rig = faceliftViews(64).map((c, i) => {
    // Cameras at unequal distances, as the real rig (2.0–3.4 after a global scale).
    const k = [0.8, 1.1, 1.25, 0.9, 1.0, 1.2][i]!;
    return tilted([c], [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0], k)[0]!;
  });
  const X: Vec3 = [0.3, 0.2, 0.25];
  const fork = rig.map((c) => {
    const d = Math.hypot(c.c2w[3]!, c.c2w[7]!, c.c2w[11]!);
    return tilted([c], [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0], 2.7 / d)[0]!;
  });
  const ours = uprightRig(rig, { up: 'z', distance: 2.7 });
  const s = 2.7 / (rig.reduce((a, c) => a + Math.hypot(c.c2w[3]!, c.c2w[7]!, c.c2w[11]!), 0) / rig.length);
  let forkMiss = 0;
  rig.forEach((c, i) => {
    const a = pixel(c, X)!;
    const f = pixel(fork[i]!, X)!;
    const o = pixel(ours[i]!, [X[0] * s, X[1] * s, X[2] * s])!;
    assert.ok(Math.hypot(a[0] - o[0], a[1] - o[1]) < 1e-9);
    forkMiss = Math.max(forkMiss, Math.hypot(a[0] - f[0], a[1] - f[1]));
  });
  assert.ok(forkMiss > 1, `the fork's cameras move the point by ${forkMiss} px`);
});

test("the committed numpy rig (the real rig's spread): up is found from the cameras; the fork's estimate points " +
  'sideways', async () => {
  const rig = await readRig(RIG_FIXTURE);
  const cams: Camera[] = rig.map((c) => {
    const w2c = new Float64Array(16);
    for (let r = 0; r < 3; r++) {
      for (let k = 0; k < 3; k++) w2c[4 * r + k] = c.R[3 * r + k]!;
      w2c[4 * r + 3] = c.T[r]!;
    }
    w2c[15] = 1;
    const c2w = new Float64Array(16);
    for (let r = 0; r < 3; r++) for (let k = 0; k < 3; k++) c2w[4 * r + k] = w2c[4 * k + r]!;
    for (let r = 0; r < 3; r++) {
      c2w[4 * r + 3] = -(c2w[4 * r]! * c.T[0] + c2w[4 * r + 1]! * c.T[1] + c2w[4 * r + 2]! * c.T[2]);
    }
    c2w[15] = 1;
    return { width: 288, height: 256, fx: c.K[0], fy: c.K[4], cx: c.K[2] + 0.5, cy: c.K[5] + 0.5, c2w, w2c };
  });
  // The fixture's world is Z-up (scripts/fixtures/mouse-rig.py aims level cameras from −51° to +78° elevation).
  const up = rigUp(cams)!;
  assert.ok(up[2] > 0.9999, `${up}`);
  const fork = centrePlaneUp(cams);
  assert.ok(Math.abs(fork[2]) < 0.5, `the camera centres' least-variance direction is ${fork}`);
  const out = uprightRig(cams, { up: 'z', distance: 2.7 });
  assert.ok(rigUp(out)![2] > 0.999);
});
