import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { invertRigid } from '../../cameras/camera.ts';
import { writeCameraFile } from '../../cameras/opencv-json.ts';
import { faceliftViews, trainingRig } from '../../cameras/rigs.ts';
import { rotationBetween } from '../../mouse/normalize.ts';
import { applyOverrides, checkTree, parseYamlTree } from '../config-tree.ts';
import { streamRng } from '../rng.ts';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGslrmTrainConfig } from './config.ts';
import { drawBackground, drawViews, RandomViewDataset, readSampleList, scaleCamera } from './dataset.ts';
import { synthHeads } from './testing/fixtures.ts';

const CFG = new URL('../../../configs/gslrm.yaml', import.meta.url).pathname;

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

test('input_views: the given inputs in their order, the other views drawn at random as targets; bad lists refused', async () => {
  const root = mkdtempSync(join(tmpdir(), 'gslrm-inputs-'));
  try {
    const data = await synthHeads(join(root, 'heads'), 1, 32, { layout: 'gslrm', seed: 4, spacing: 0.03 });
    const inputs = [24, 20, 16, 8, 0, 28];
    const ds = new RandomViewDataset(readSampleList(join(data, 'data_gslrm_train.txt')),
      { imageSize: 32, numViews: 10, numInputViews: 6, inputViews: inputs, maximizeOverlap: true, background: 'white' }, 5);
    const seen = new Set<number>();
    for (let pass = 0; pass < 6; pass++) {
      const s = await ds.get(0, pass, 0);
      assert.deepEqual(s.viewIndices.slice(0, 6), inputs);
      const extra = s.viewIndices.slice(6);
      assert.equal(new Set(extra).size, 4);
      for (const e of extra) {
        assert.ok(!inputs.includes(e) && e >= 0 && e < 32);
        seen.add(e);
      }
    }
    assert.ok(seen.size > 8, 'targets vary from pass to pass');
    const demo = readFileSync(new URL('../../../configs/demo/gslrm_views.yaml', import.meta.url), 'utf8');
    const tree = parseYamlTree(demo.replace('input_views: [24, 20, 16, 8, 0, 28]', 'input_views: [1, 2, 2, 3, 4, 5]'), 'c.yaml');
    assert.throws(() => parseGslrmTrainConfig(tree, 'c.yaml'), /input_views must list num_input_views \(6\) distinct view indices/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('mouse dataset: fixed view order, an upright rig, masks for RGB views, one augmentation for all', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fl-mouse-ds-'));
  try {
    // A sample on FaceLift's cameras with the world turned on its side, RGB views (white background), as `mouse
    // generate` + a foreign world would give.
    const sample = join(dir, 's0');
    mkdirSync(join(sample, 'images'), { recursive: true });
    const rig = faceliftViews(16);
    const Q = rotationBetween([0, 0, 1], [1, 0, 0]);
    const turn = (m: Float64Array) => {
      const c2w = new Float64Array(16);
      for (let r = 0; r < 3; r++) for (let k = 0; k < 4; k++) c2w[4 * r + k] = 0.5 * (k === 3 ? 1 : 2) *
        (Q[3 * r]! * m[k]! + Q[3 * r + 1]! * m[4 + k]! + Q[3 * r + 2]! * m[8 + k]!);
      c2w[15] = 1;
      return c2w;
    };
    await writeCameraFile(join(sample, 'opencv_cameras.json'), {
      id: 's0',
      frames: rig.map((c) => {
        const c2w = turn(c.c2w);
        return { ...c, c2w, w2c: invertRigid(c2w) };
      }),
    });
    for (let v = 0; v < 6; v++) {
      const px = Buffer.alloc(16 * 16 * 3, 255);
      for (let i = 0; i < 16 * 8; i++) px.set([40 * v, 100, 200], 3 * i); // top half coloured, bottom half white
      await sharp(px, { raw: { width: 16, height: 16, channels: 3 } }).png()
        .toFile(join(sample, `images/cam_${String(v).padStart(3, '0')}.png`));
    }
    const yaml = (mouse: string) => `${readFileSync(CFG, 'utf8')}\n${mouse}`;
    const parse = (mouse: string, sets: string[] = []) => {
      const tree = parseYamlTree(yaml(mouse), 'm.yaml');
      applyOverrides(tree, ['model.image_tokenizer.image_size=16', ...sets]);
      return parseGslrmTrainConfig(tree, 'm.yaml');
    };
    const { config } = parse(`mouse: { use_mouse_dataset: true,
      augmentation: { enabled: true, brightness_range: [0.5, 0.6], contrast_range: [1, 1], hflip: false } }`);
    assert.ok(config.mouse?.cameras && config.mouse.autoMask && config.mouse.augmentation);
    const opts = {
      imageSize: 16, numViews: 6, numInputViews: 5, maximizeOverlap: false, background: 'white' as const,
      mouse: config.mouse,
    };
    const ds = new RandomViewDataset([sample], opts, 3);
    const plain = new RandomViewDataset([sample], { ...opts, mouse: { ...config.mouse!, augmentation: null } }, 3);
    for (let pass = 0; pass < 3; pass++) {
      const s = await ds.get(0, pass, 0);
      const p = await plain.get(0, pass, 0);
      assert.deepEqual(s.viewIndices, [0, 1, 2, 3, 4, 5]);
      // Back to FaceLift's own cameras: upright and at 2.7 (the file had them on their side at 1.35).
      s.cameras.forEach((c, i) => c.c2w.forEach((x, k) => assert.ok(Math.abs(x - rig[i]!.c2w[k]!) < 1e-9, `${i}`)));
      assert.ok(s.hasAlpha);
      assert.equal(s.alpha[0], 1);
      assert.equal(s.alpha[16 * 16 - 1], 0);
      // One brightness factor in [0.5, 0.6] for every view (contrast 1): the same ratio to the plain views everywhere.
      const ratios = new Set<string>();
      for (let i = 0; i < s.rgb.length; i++) if (p.rgb[i]! > 0.3) ratios.add((s.rgb[i]! / p.rgb[i]!).toFixed(4));
      assert.equal(ratios.size, 1, `${[...ratios]}`);
      const r = Number([...ratios][0]);
      assert.ok(r >= 0.5 && r <= 0.6, `${r}`);
    }
    // Without use_mouse_dataset the section is not read, and the one key that would matter is named.
    const off = parse('mouse: { augmentation: { enabled: true } }');
    assert.equal(off.config.mouse, null);
    assert.match(off.notes.join('\n'), /mouse\.augmentation is read by the mouse dataset only/);
    assert.throws(() => parse('mouse: { use_mouse_dataset: true, augmentation: { enabled: true, hflip: true } }'),
      /mirror the views/);
    assert.throws(() => parse('mouse: { use_mouse_dataset: true }', ['training.dataset.input_views=[0,1,2,3,4,5]']),
      /both choose the input views/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('grad_checkpoint_every: 1 as shipped (recompute each layer), 0 keeps the activations, others refused', () => {
  const shipped = readFileSync(new URL('../../../configs/gslrm_pretrain_256.yaml', import.meta.url), 'utf8');
  const parse = (v: string | null) => {
    const t = parseYamlTree(shipped, 'c.yaml');
    if (v !== null) applyOverrides(t, [`training.runtime.grad_checkpoint_every=${v}`]);
    return parseGslrmTrainConfig(t, 'c.yaml').config.runtime.gradCheckpointEvery;
  };
  assert.equal(parse(null), 1);
  assert.equal(parse('0'), 0);
  assert.throws(() => parse('-1'), /grad_checkpoint_every must be a whole number ≥ 0, got -1/);
  assert.throws(() => parse('1.5'), /grad_checkpoint_every must be an integer, got 1\.5/);
});
