import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trainingRig } from '../../cameras/rigs.ts';
import { applyOverrides, checkTree, parseYamlTree } from '../config-tree.ts';
import { streamRng } from '../rng.ts';
import { drawBackground, drawViews, scaleCamera } from './dataset.ts';

test('drawViews: distinct inputs; extra views within the reference overlap rule (unnormalised positions · ≥ 0.5)', () => {
  const rig = trainingRig(64, 32);
  const pos = (i: number) => [rig[i]!.c2w[3]!, rig[i]!.c2w[7]!, rig[i]!.c2w[11]!];
  const dot = (a: number[], b: number[]) => a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!;
  const seenExtra = new Set<number>();
  for (let k = 0; k < 200; k++) {
    const v = drawViews(rig, 8, 4, true, streamRng(1, 'item', k, 0))!;
    assert.equal(new Set(v).size, 8);
    const inputs = v.slice(0, 4);
    for (const e of v.slice(4)) {
      assert.ok(
        inputs.some((i) => dot(pos(i), pos(e)) >= 0.5),
        `view ${e} overlaps none of ${inputs}`,
      );
      seenExtra.add(e);
    }
  }
  assert.ok(seenExtra.size > 20, 'extras range over the rig');
  // One input: the extras stay within ≈ 93° of azimuth (rig at elevation 20°, radius 2.7).
  for (let k = 0; k < 50; k++) {
    const v = drawViews(rig, 4, 1, true, streamRng(2, 'item', k, 0))!;
    for (const e of v.slice(1)) assert.ok(Math.min(Math.abs(e - v[0]!), 32 - Math.abs(e - v[0]!)) <= 8);
  }
  assert.equal(
    drawViews([rig[0]!, rig[16]!], 2, 1, true, streamRng(3, 'x')),
    null,
    'opposite cameras never overlap: no draw',
  );
  assert.deepEqual(
    drawViews(rig, 5, 2, false, streamRng(4, 'item', 0, 0)),
    drawViews(rig, 5, 2, false, streamRng(4, 'item', 0, 0)),
    'a stream is a function of its name',
  );
});

test('backgrounds and camera scaling', () => {
  assert.deepEqual(drawBackground('white', streamRng(0, 'b')), [1, 1, 1]);
  assert.deepEqual(drawBackground(0.25, streamRng(0, 'b')), [0.25, 0.25, 0.25]);
  const seen = new Set<number>();
  for (let k = 0; k < 60; k++) seen.add(drawBackground('three_choices', streamRng(0, 'b', k))[0]!);
  assert.deepEqual([...seen].sort(), [0, 0.5, 1]);
  const c = trainingRig(512, 32)[3]!;
  const s = scaleCamera(c, 0.25);
  assert.equal(s.width, 128);
  assert.ok(Math.abs(s.fx - c.fx / 4) < 1e-12 && Math.abs(s.cx - c.cx / 4) < 1e-12 && Math.abs(s.cy - 64) < 1e-9);
});

test('config trees: --set overrides (YAML scalars), unknown keys listed, wrong types named', () => {
  const t = parseYamlTree('training:\n  optimizer:\n    lr: 0.1\n', 'x.yaml');
  applyOverrides(t, ['training.optimizer.lr=5e-5', 'training.new.flag=true', 'validation.dataset_path=null']);
  assert.deepEqual(t, {
    training: { optimizer: { lr: 5e-5 }, new: { flag: true } },
    validation: { dataset_path: null },
  });
  const schema = {
    training: { optimizer: { lr: 'number' as const } },
    validation: { dataset_path: 'string?' as const },
  };
  assert.deepEqual(checkTree(t, schema, 'x.yaml'), ['training.new']);
  applyOverrides(t, ['training.optimizer.lr=high']);
  assert.throws(() => checkTree(t, schema, 'x.yaml'), /x\.yaml: training\.optimizer\.lr must be a number, got "high"/);
  assert.throws(() => applyOverrides(t, ['nokey']), /expected key\.path=value/);
});
