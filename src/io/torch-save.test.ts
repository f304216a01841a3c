import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { PyDict } from './pickle.ts';
import { runTorchPython } from './testing/torch-python.ts';
import { TorchFile } from './torch-pt.ts';
import { pyDict, pyFloat, pyTuple, saveTorch, torchTensor } from './torch-save.ts';

function sample() {
  return pyDict([
    [
      'model',
      pyDict(
        [
          [
            'a.weight',
            torchTensor(
              Float32Array.from({ length: 12 }, (_, i) => i / 3 - 1),
              [3, 4],
            ),
          ],
          ['a.bias', torchTensor(Float32Array.of(1.5, -2), [2])],
          ['step', torchTensor(Float32Array.of(7), [])],
          ['ids', torchTensor(BigInt64Array.of(1n, -2n, 3n), [3])],
          ['half', torchTensor(Uint16Array.of(0x3c00, 0xc000), [2], 'F16')],
        ],
        true,
      ),
    ],
    ['betas', pyTuple(pyFloat(0.9), pyFloat(0.95))],
    ['lr', pyFloat(1)],
    ['count', 2 ** 40],
    ['neg', -5],
    ['flags', [true, false, null]],
    ['name', 'ckpt ü'],
  ]);
}

test('saveTorch: our reader reads back every tensor and value', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsave-'));
  try {
    const p = join(dir, 'x.pt');
    await saveTorch(p, sample());
    assert.deepEqual(readdirSync(dir), ['x.pt'], 'no temporary file left behind');
    const f = await TorchFile.open(p);
    assert.deepEqual(
      await f.readF32('model.a.weight'),
      Float32Array.from({ length: 12 }, (_, i) => i / 3 - 1),
    );
    assert.deepEqual(f.info('model.a.weight').shape, [3, 4]);
    assert.deepEqual(await f.read('model.ids'), BigInt64Array.of(1n, -2n, 3n));
    assert.deepEqual(await f.readF32('model.half'), Float32Array.of(1, -2));
    const root = f.root as PyDict;
    assert.deepEqual(root.get('betas'), [0.9, 0.95]);
    assert.equal(root.get('lr'), 1);
    assert.equal(Number(root.get('count')), 2 ** 40);
    assert.equal(root.get('neg'), -5);
    assert.deepEqual(root.get('flags'), [true, false, null]);
    assert.equal(root.get('name'), 'ckpt ü');
    await f.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('saveTorch: torch.load (Debian torch 1.13) reads the file with the same values and types', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsave-'));
  try {
    const p = join(dir, 'x.pt');
    await saveTorch(p, sample(), 'x');
    const out = runTorchPython(
      `
import sys, json, torch, collections
d = torch.load(sys.argv[1], map_location='cpu')
m = d['model']
print(json.dumps({
  'ordered': isinstance(m, collections.OrderedDict), 'keys': list(m.keys()),
  'w': m['a.weight'].tolist(), 'wdtype': str(m['a.weight'].dtype), 'step': m['step'].item(), 'stepdim': m['step'].dim(),
  'ids': m['ids'].tolist(), 'iddtype': str(m['ids'].dtype), 'half': m['half'].tolist(), 'hdtype': str(m['half'].dtype),
  'betas': list(d['betas']), 'betas_tuple': isinstance(d['betas'], tuple), 'lr_float': isinstance(d['lr'], float),
  'count': d['count'], 'neg': d['neg'], 'flags': d['flags'], 'name': d['name'],
}))`,
      [p],
    );
    const r = JSON.parse(out) as Record<string, unknown>;
    assert.equal(r.ordered, true);
    assert.deepEqual(r.keys, ['a.weight', 'a.bias', 'step', 'ids', 'half']);
    assert.deepEqual((r.w as number[][]).flat(), [...Float32Array.from({ length: 12 }, (_, i) => i / 3 - 1)]);
    assert.equal(r.wdtype, 'torch.float32');
    assert.equal(r.step, 7);
    assert.equal(r.stepdim, 0);
    assert.deepEqual(r.ids, [1, -2, 3]);
    assert.equal(r.iddtype, 'torch.int64');
    assert.deepEqual(r.half, [1, -2]);
    assert.equal(r.hdtype, 'torch.float16');
    assert.deepEqual(r.betas, [0.9, 0.95]);
    assert.equal(r.betas_tuple, true);
    assert.equal(r.lr_float, true);
    assert.equal(r.count, 2 ** 40);
    assert.equal(r.neg, -5);
    assert.deepEqual(r.flags, [true, false, null]);
    assert.equal(r.name, 'ckpt ü');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
