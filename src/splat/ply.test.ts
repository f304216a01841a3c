import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SH_C0, type GaussianSet } from './gaussians.ts';
import { decodePly, encodePly, encodePlyAscii, readPly, writePly } from './ply.ts';
import { headScene } from './testing/scene.ts';
import { UserError } from '../util/errors.ts';

function same(a: GaussianSet, b: GaussianSet): void {
  assert.equal(a.count, b.count);
  assert.equal(a.shDegree, b.shDegree);
  for (const k of ['means', 'scales', 'rotations', 'opacities', 'sh'] as const) assert.deepEqual(a[k], b[k], k);
}

test('FaceLift layout: the 62 properties of spec pipeline.md §6.2 in order, uchar colours truncated, f_rest zero padding', () => {
  const g = headScene(5, 3);
  g.sh[0] = 10; g.sh[1] = -10; // colours clip at 255 and 0
  const buf = encodePly(g, 'facelift');
  const head = buf.toString('latin1', 0, buf.indexOf('end_header') + 11);
  const props = head.split('\n').filter((l) => l.startsWith('property')).map((l) => l.split(' ').slice(1).join(' '));
  const want = ['float x', 'float y', 'float z', 'uchar red', 'uchar green', 'uchar blue', 'float f_dc_0', 'float f_dc_1', 'float f_dc_2',
    ...Array.from({ length: 45 }, (_, j) => `float f_rest_${j}`), 'float opacity', 'float scale_0', 'float scale_1', 'float scale_2',
    'float rot_0', 'float rot_1', 'float rot_2', 'float rot_3'];
  assert.deepEqual(props, want);
  assert.ok(head.startsWith('ply\nformat binary_little_endian 1.0\nelement vertex 5\n'));
  assert.equal(buf.length, head.length + 5 * (12 + 3 + 12 + 180 + 4 + 12 + 16));
  const rec = (i: number) => head.length + i * 239;
  assert.deepEqual([buf[rec(0) + 12], buf[rec(0) + 13]], [255, 0]);
  assert.equal(buf[rec(1) + 14], Math.trunc((SH_C0 * g.sh[3 + 2] + 0.5) * 255));
  for (let j = 0; j < 45; j++) assert.equal(buf.readFloatLE(rec(2) + 27 + 4 * j), 0);
  assert.equal(buf.readFloatLE(rec(3) + 207), g.opacities[3]);
  assert.equal(buf.readFloatLE(rec(4) + 223), g.rotations[16]);
  same(decodePly(buf), g);
});

test('round trips: both layouts, SH degrees 0/1/3, binary and ASCII, through files', async () => {
  for (const deg of [0, 1, 3]) {
    const g = headScene(40, deg + 1, deg);
    same(decodePly(encodePly(g, '3dgs')), g);
    same(decodePly(encodePlyAscii(g, '3dgs')), g);
    if (deg !== 1) same(decodePly(encodePly(g, 'facelift')), g); // FaceLift pads to degree 3: a degree-3 set survives
  }
  // degree 1 in the FaceLift layout comes back as degree 3 with the extra coefficients zero
  const g1 = headScene(7, 2, 1);
  const back = decodePly(encodePly(g1, 'facelift'));
  assert.equal(back.shDegree, 3);
  for (let i = 0; i < 7; i++) for (let k = 0; k < 4; k++) for (let c = 0; c < 3; c++) assert.equal(back.sh[48 * i + 3 * k + c], g1.sh[12 * i + 3 * k + c]);
  const dir = await mkdtemp(join(tmpdir(), 'ply-'));
  try {
    const g = headScene(100, 9);
    await writePly(join(dir, 'a.ply'), g);
    same(await readPly(join(dir, 'a.ply')), g);
    await assert.rejects(readPly(join(dir, 'missing.ply')), UserError);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('standard 3DGS layout: normals present, f_rest channel-major; big-endian files read too', () => {
  const g = headScene(3, 4, 1);
  const buf = encodePly(g, '3dgs');
  const head = buf.toString('latin1', 0, buf.indexOf('end_header') + 11);
  assert.match(head, /property float nx\nproperty float ny\nproperty float nz\nproperty float f_dc_0/);
  assert.match(head, /f_rest_8\nproperty float opacity/);
  // f_rest_j = channel j/3, coefficient j%3+1: f_rest_4 is green's second coefficient
  const rec = head.length + 1 * (3 + 3 + 3 + 9 + 1 + 3 + 4) * 4;
  assert.equal(buf.readFloatLE(rec + 4 * (9 + 4)), g.sh[12 * 1 + 3 * 2 + 1]);
  // same data, big-endian
  const beHead = head.replace('binary_little_endian 1.0', 'binary_big_endian 1.0');
  const out = Buffer.alloc(beHead.length + buf.length - head.length);
  out.write(beHead, 0, 'latin1');
  for (let o = head.length, p = beHead.length; o < buf.length; o += 4, p += 4) out.writeFloatBE(buf.readFloatLE(o), p);
  same(decodePly(out), g);
});

test('malformed PLY files give errors that say what is wrong', () => {
  const good = encodePly(headScene(4, 1), '3dgs');
  const bad = (b: Buffer, re: RegExp) => assert.throws(() => decodePly(b, 'x.ply'), (e: unknown) => e instanceof UserError && re.test(e.message));
  bad(Buffer.from('hello'), /x\.ply: not a PLY file/);
  bad(Buffer.from('ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n'), /no "end_header"/);
  bad(good.subarray(0, good.length - 3), /truncated/);
  bad(Buffer.from(good.toString('latin1').replace('property float x\n', 'property float q\n'), 'latin1'), /vertex lacks x/);
  bad(Buffer.from(good.toString('latin1').replace('format binary_little_endian', 'format binary_middle_endian'), 'latin1'), /unknown PLY format/);
  bad(Buffer.from('ply\nformat ascii 1.0\nelement vertex 1\n' + ['x', 'y', 'z', 'f_dc_0', 'f_dc_1', 'f_dc_2', 'f_rest_0', 'opacity', 'scale_0', 'scale_1', 'scale_2', 'rot_0', 'rot_1', 'rot_2', 'rot_3'].map((n) => `property float ${n}\n`).join('') + 'end_header\n' + '0 '.repeat(15) + '\n'), /1 f_rest properties/);
  const ascii = encodePlyAscii(headScene(2, 1), 'facelift').toString('latin1');
  bad(Buffer.from(ascii.replace(/\n[^\n]*\n$/, '\n'), 'latin1'), /ends after 1 of 2 vertices/);
  bad(Buffer.from(ascii.replace(/end_header\n(\S+)/, 'end_header\nabc'), 'latin1'), /"abc" is not a number \(x\)/);
  bad(Buffer.from(ascii.replace(/end_header\n(\S+)/, 'end_header\nnan'), 'latin1'), /non-finite x/);
});
