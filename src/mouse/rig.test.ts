import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NdArray, numpyGlobals } from '../io/numpy-pickle.ts';
import { PyDict, unpickle } from '../io/pickle.ts';
import { cameraCentre, det3 } from './geometry.ts';
import { readRig, rigFromPickle } from './rig.ts';

const FIXTURE = new URL('./testdata/new_cam.pkl', import.meta.url).pathname;
const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

test('new_cam.pkl written by numpy 1.24 (scripts/fixtures/mouse-rig.py): K, R, T of 6 cameras, T as a column', async () => {
  const rig = await readRig(FIXTURE);
  assert.equal(rig.length, 6);
  const aim = [30, -20, 15];
  const distances = [246, 300, 352, 414, 280, 330];
  rig.forEach((c, i) => {
    assert.ok(Math.abs(det3(c.R) - 1) < 1e-9);
    const C = cameraCentre(c.R, c.T);
    assert.ok(Math.abs(Math.hypot(C[0] - aim[0]!, C[1] - aim[1]!, C[2] - aim[2]!) - distances[i]!) < 1e-9, `camera ${i} distance`);
    assert.equal(c.K[0], [400, 420, 450, 520, 410, 440][i]);
    assert.equal(c.K[2], 288 / 2 - 0.5 + (i - 2.5));
    assert.equal(c.K[8], 1);
  });
  // Camera 3 is 78° up: its centre is 414·sin 78° above the aim point.
  assert.ok(Math.abs(cameraCentre(rig[3]!.R, rig[3]!.T)[2] - (15 + 414 * Math.sin((78 * Math.PI) / 180))) < 1e-9);
});

test('numpy arrays: Fortran order comes back in C order; a dict keyed by camera index is a rig too', () => {
  const fortran = unpickle(hex(
    '8002636e756d70792e636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7100636e756d70790a6e6461727261790a71014b00857102635f636f646563730a656e636f64650a7103580100000062710458060000006c6174696e317105867106527107877108527109284b014b024b0386710a636e756d70790a64747970650a710b58020000006634710c898887710d52710e284b0358010000003c710f4e4e4e4affffffff4affffffff4b0074711062886803581b00000000000000000040400000c2803f0000c28040000000400000c2a04071116805867112527113747114622e',
  ), { globals: numpyGlobals() });
  assert.ok(fortran instanceof NdArray);
  assert.deepEqual(fortran.shape, [2, 3]);
  assert.deepEqual([...fortran.data], [0, 1, 2, 3, 4, 5]);
  const dict = unpickle(hex(
    '80049585010000000000007d944b007d94288c014b948c156e756d70792e636f72652e6d756c74696172726179948c0c5f7265636f6e7374727563749493948c056e756d7079948c076e6461727261799493944b0085944301629487945294284b014b034b03869468068c0564747970659493948c02663894898887945294284b038c013c944e4e4e4affffffff4affffffff4b00749462894348000000000000f03f000000000000000000000000000000000000000000000000000000000000f03f000000000000000000000000000000000000000000000000000000000000f03f947494628c015294680568084b008594680a87945294284b014b034b0386946812894348000000000000f03f000000000000000000000000000000000000000000000000000000000000f03f000000000000000000000000000000000000000000000000000000000000f03f947494628c015494680568084b008594680a87945294284b014b0385946812894318000000000000f03f000000000000004000000000000008409474946275732e',
  ), { globals: numpyGlobals() });
  const rig = rigFromPickle(dict);
  assert.deepEqual(rig[0]!.T, [1, 2, 3]);
});

test('malicious or malformed calibrations are refused with a reason', () => {
  // GLOBAL os.system, then a call: never imported, never run.
  const evil = Uint8Array.from(Buffer.from('\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsR.', 'latin1'));
  assert.throws(() => unpickle(evil, { globals: numpyGlobals(), source: 'new_cam.pkl' }), /refusing to load global "os.system"/);
  const cam = (o: Record<string, unknown>) => new PyDict(Object.entries(o));
  const mirror = cam({ K: [1, 0, 0, 0, 1, 0, 0, 0, 1], R: [1, 0, 0, 0, 1, 0, 0, 0, -1], T: [0, 0, 0] });
  assert.throws(() => rigFromPickle([mirror]), /camera 0: R is not a proper rotation \(det -1/);
  assert.throws(() => rigFromPickle([cam({ K: [1, 0, 0], R: [1, 0, 0, 0, 1, 0, 0, 0, 1], T: [0, 0, 0] })]), /camera 0 K: expected 9 finite numbers/);
  assert.throws(() => rigFromPickle([cam({ K: [1, 0, 0, 0, 1, 0, 0, 0, 1], T: [0, 0, 0] })]), /camera 0 has no "R"/);
  assert.throws(() => rigFromPickle([[1, 2, 3]]), /is not a dict with K, R and T/);
  assert.throws(() => rigFromPickle('cameras'), /expected a list of cameras/);
});
