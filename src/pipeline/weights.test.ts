import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadGslrmConfig, OFFICIAL_GSLRM_CONFIG } from '../lrm/config.ts';
import { listInputs } from './batch.ts';
import { DEMO_WEIGHTS, SHIPPED_GSLRM_CONFIG, locateWeights, resolveWeights } from './weights.ts';
import { loadModels } from './models.ts';
import { makeTinyWeights } from './testing/tiny-weights.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'fl-weights-'));

test('the shipped GS-LRM config is the official one (spec gslrm.md §1)', () => {
  assert.deepEqual(loadGslrmConfig(SHIPPED_GSLRM_CONFIG), OFFICIAL_GSLRM_CONFIG);
});

test('locateWeights: official layout, newest checkpoint, config.yaml beside it overrides the shipped config; missing parts named', () => {
  const dir = tmp();
  try {
    assert.throws(() => locateWeights(dir), /missing mvdiffusion\/pipeckpts\/model_index\.json and gslrm\/ckpt_\*\.pt.*facelift weights download/);
    mkdirSync(join(dir, 'mvdiffusion/pipeckpts'), { recursive: true });
    writeFileSync(join(dir, 'mvdiffusion/pipeckpts/model_index.json'), '{}');
    assert.throws(() => locateWeights(dir), /missing gslrm\/ckpt_\*\.pt/);
    mkdirSync(join(dir, 'gslrm'));
    for (const f of ['ckpt_0000000000000100.pt', 'ckpt_0000000000021125.pt', 'notes.txt']) writeFileSync(join(dir, 'gslrm', f), '');
    let w = locateWeights(dir);
    assert.equal(w.gslrmCheckpoint, join(dir, 'gslrm/ckpt_0000000000021125.pt'));
    assert.deepEqual([w.gslrmConfig, w.gslrmConfigOrigin], [SHIPPED_GSLRM_CONFIG, 'shipped']);
    writeFileSync(join(dir, 'gslrm/config.yaml'), 'model: {}');
    w = locateWeights(dir);
    assert.deepEqual([w.gslrmConfig, w.gslrmConfigOrigin], [join(dir, 'gslrm/config.yaml'), 'override']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resolveWeights --model official: offline without weights says so and how to proceed; $FACELIFT_WEIGHTS is used as given', async () => {
  const dir = tmp();
  try {
    const env = { HF_HUB_OFFLINE: '1', FACELIFT_CACHE: join(dir, 'cache'), HF_HUB_CACHE: join(dir, 'hf') };
    await assert.rejects(resolveWeights({ env, cwd: dir, model: 'official' }), (e: Error) => {
      assert.match(e.message, /FaceLift weights .*wlyu\/OpenFaceLift.* offline mode is on/);
      assert.match(e.message, /--weights DIR/);
      return true;
    });
    const w = makeTinyWeights(join(dir, 'w'));
    assert.equal((await resolveWeights({ env: { ...env, FACELIFT_WEIGHTS: w } })).root, w);
    // ./checkpoints (where `facelift weights download` puts them) is found without any setting.
    const home = join(dir, 'project');
    makeTinyWeights(join(home, 'checkpoints'));
    assert.equal((await resolveWeights({ env, cwd: home })).root, join(home, 'checkpoints'));
    assert.equal((await resolveWeights({ env, dir: w })).downloaded, false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resolveWeights: without local weights auto runs the shipped demo models (no download); demo is always them', async () => {
  const dir = tmp();
  try {
    const env = { FACELIFT_CACHE: join(dir, 'cache'), HF_HUB_CACHE: join(dir, 'hf') };
    const auto = await resolveWeights({ env, cwd: dir });
    assert.deepEqual([auto.model, auto.root, auto.downloaded], ['demo', DEMO_WEIGHTS, false]);
    assert.equal(auto.gslrmConfigOrigin, 'override', 'the demo GS-LRM brings its own config');
    // Local official-layout weights win over the demo under auto, and are labelled official.
    makeTinyWeights(join(dir, 'checkpoints'));
    const local = await resolveWeights({ env, cwd: dir });
    assert.deepEqual([local.model, local.root], ['official', join(dir, 'checkpoints')]);
    assert.equal((await resolveWeights({ env, cwd: dir, model: 'demo' })).model, 'demo');
    await assert.rejects(resolveWeights({ env, dir: join(dir, 'checkpoints'), model: 'demo' }), /--model demo runs the shipped demo models; leave out --weights/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loadModels refuses a GS-LRM whose image size differs from the diffusion output, naming the fix', async () => {
  const dir = tmp();
  try {
    const w = makeTinyWeights(join(dir, 'w'), 32);
    await assert.rejects(loadModels({ weights: w, matting: 'none', cacheDir: join(dir, 'cache'), threads: 1 }),
      /takes 32² views but the diffusion model .* makes 64² views; put a config\.yaml with image_tokenizer\.image_size: 64/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listInputs: .png/.jpg/.jpeg in any case, sorted, folder name up to the first dot, clashes resolved', () => {
  const dir = tmp();
  try {
    for (const f of ['b.JPG', 'a.png', 'a.v2.jpeg', 'c.Jpeg', 'd.gif', 'e.png.txt', 'Z.PNG']) writeFileSync(join(dir, f), '');
    mkdirSync(join(dir, 'folder.png'));
    assert.deepEqual(listInputs(dir).map((i) => [i.file.slice(dir.length + 1), i.name]),
      [['Z.PNG', 'Z'], ['a.png', 'a'], ['a.v2.jpeg', 'a.v2'], ['b.JPG', 'b'], ['c.Jpeg', 'c']]);
    assert.throws(() => listInputs(join(dir, 'nope')), /cannot read the input folder/);
    assert.throws(() => listInputs(join(dir, 'a.png')), /is not a folder/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
