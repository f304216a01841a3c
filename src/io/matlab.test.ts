import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseMat, readMat } from './matlab.ts';

const fixture = (n: string) => new URL(`./testdata/${n}`, import.meta.url).pathname;

test('readMat: plain (uncompressed) variables written by scipy.io.savemat', () => {
  const m = readMat(fixture('plain.mat'));
  const a = m.get('a')!;
  assert.equal(a.kind, 'numeric');
  if (a.kind === 'numeric') {
    assert.deepEqual(a.dims, [2, 3]);
    assert.deepEqual([...a.data], [0, 3, 1, 4, 2, 5], 'column-major');
  }
  const s = m.get('s')!;
  assert.ok(s.kind === 'char' && s.text === 'hello');
  const i8 = m.get('i8')!;
  assert.ok(i8.kind === 'numeric' && i8.className === 'int8' && [...i8.data].join() === '-3,4');
  const c = m.get('c')!;
  assert.ok(c.kind === 'cell' && c.items.length === 2);
  if (c.kind === 'cell') {
    assert.ok(c.items[0]!.kind === 'numeric' && c.items[0]!.className === 'single' && c.items[0]!.data[0] === 1.5);
    assert.ok(c.items[1]!.kind === 'char' && c.items[1]!.text === 'x');
  }
});

test('readMat: compressed cell-of-struct layout (MatConvNet), and clear errors for damaged files', () => {
  const m = readMat(fixture('vgg-layout-tiny.mat'));
  const layers = m.get('layers')!;
  assert.ok(layers.kind === 'cell' && layers.items.length === 37);
  if (layers.kind !== 'cell') return;
  const conv3 = layers.items[5]!;
  assert.ok(conv3.kind === 'struct');
  if (conv3.kind !== 'struct') return;
  assert.deepEqual(conv3.fields, ['name', 'type', 'weights', 'stride']);
  const w = conv3.items[0]!.get('weights')!;
  assert.ok(w.kind === 'cell' && w.items[0]!.kind === 'numeric');
  if (w.kind === 'cell' && w.items[0]!.kind === 'numeric') {
    assert.deepEqual(w.items[0]!.dims, [3, 3, 2, 3]);
    // scipy: layers[0][5][0][0][2][0][0][1, 2, 0, 1] = -1.0009248 → column-major index 1 + 3·2 + 9·0 + 18·1.
    assert.ok(Math.abs(w.items[0]!.data[1 + 6 + 18]! - -1.0009248) < 1e-6);
  }
  const meta = m.get('meta')!;
  assert.ok(meta.kind === 'struct' && meta.fields.includes('normalization'));

  const bytes = readFileSync(fixture('vgg-layout-tiny.mat'));
  assert.throws(() => parseMat(bytes.subarray(0, 2000), 'cut.mat'), /cut\.mat: .*(inflate|truncated|past the end)/);
  assert.throws(() => parseMat(Buffer.alloc(200), 'zero.mat'), /zero\.mat: not a MATLAB 5 MAT-file/);
  assert.throws(() => readMat('/nonexistent/x.mat'), /cannot read \/nonexistent\/x\.mat: no such file/);
});
