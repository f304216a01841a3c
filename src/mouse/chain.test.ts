/**
 * The mouse adaptation end to end at toy size, as src/mouse/README.md documents it at full size: a raw rig recording
 * → `mouse convert` → `mouse center-align` → a short fine-tune of the multi-view diffusion model
 * (configs/mouse_mvdiffusion_centered_real.yaml) → `mouse generate` (through the CLI) → a short fine-tune of the
 * GS-LRM on the generated samples with the mouse dataset (configs/mouse_gslrm_lowmem.yaml) → `train pack` →
 * `infer` on a held-out frame, writing the usual outputs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { readCameraFile } from '../cameras/opencv-json.ts';
import { faceliftViews } from '../cameras/rigs.ts';
import { loadModels } from '../pipeline/models.ts';
import { OUTPUT_FILES, runInference } from '../pipeline/run.ts';
import { TINY_CLR_EMBEDS, TINY_GSLRM, TINY_PIPECKPTS } from '../pipeline/testing/tiny-weights.ts';
import { packDemo } from '../train/demo/pack.ts';
import { trainGslrm } from '../train/gslrm/run.ts';
import { trainMvDiffusion } from '../train/mvdiffusion/run.ts';
import { centerAlign } from './center-align.ts';
import { convertRecording } from './convert.ts';
import { writeRawRecording } from './testing/raw-recording.ts';

const root = mkdtempSync(join(tmpdir(), 'fl-mouse-chain-'));
after(() => rmSync(root, { recursive: true, force: true }));
const CONFIGS = new URL('../../configs/', import.meta.url).pathname;
const CLI = new URL('../../bin/facelift.js', import.meta.url).pathname;

const TITLE = 'mouse chain: convert → center-align → fine-tune MV diffusion → generate → fine-tune GS-LRM → infer';
test(TITLE, { timeout: 300_000 }, async () => {
  const raw = join(root, 'markerless_mouse_1_nerf');
  await writeRawRecording(raw, 8);
  const data = join(root, 'data_mouse');
  const conv = await convertRecording({ inputDir: raw, outputDir: data, frameInterval: 2, targetSize: 64 });
  assert.equal(conv.samples, 4);
  const centred = join(root, 'data_mouse_centered');
  assert.equal((await centerAlign({ inputDir: data, outputDir: centred, targetRatio: 0.6 })).samples, 4);

  const lines: string[] = [];
  const mv = await trainMvDiffusion({
    config: join(CONFIGS, 'mouse_mvdiffusion_centered_real.yaml'),
    sets: [
      `pretrained_model_name_or_path=${TINY_PIPECKPTS}`, `prompt_embed_path=${TINY_CLR_EMBEDS}`, 'img_wh=64',
      'unet_from_pretrained_kwargs.sample_size=8', `train_dataset.path=${join(centred, 'data_mouse_train.txt')}`,
      `validation_dataset.path=${join(centred, 'data_mouse_val.txt')}`, `output_dir=${join(root, 'mv')}`,
      'max_train_steps=2', 'checkpointing_steps=2', 'validation_steps=2', 'validation_num_inference_steps=2',
      'train_batch_size=1', 'gradient_accumulation_steps=1', 'validation_batch_size=1', 'validation_sanity_check=false',
    ],
    threads: 2,
    say: (l) => lines.push(l),
  });
  assert.ok(mv.exported, lines.join('\n'));
  assert.ok(existsSync(join(mv.exported!, 'clr_embeds.pt')), 'the export carries the prompt embeddings it used');

  // Through the CLI, as a user runs it.
  const gen = join(root, 'data_mouse_synth');
  const r = spawnSync(process.execPath, [CLI, 'mouse', 'generate', '--weights', mv.exported!, '--input_dir', centred,
    '--output_dir', gen, '--steps', '2', '--threads', '2'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /4 samples generated into .* at 64²/);
  const val = readFileSync(join(gen, 'data_val.txt'), 'utf8').trim().split('\n');
  const train = readFileSync(join(gen, 'data_train.txt'), 'utf8').trim().split('\n');
  assert.deepEqual(val.map((l) => l.split('/').at(-1)), readFileSync(join(centred, 'data_mouse_val.txt'), 'utf8')
    .trim().split('\n').map((l) => l.split('/').at(-1)), 'the held-out frames stay held out');
  assert.equal(train.length + val.length, 4);
  const file = await readCameraFile(join(train[0]!, 'opencv_cameras.json'));
  const facelift = faceliftViews(64);
  file.frames.forEach((f, i) => f.camera.w2c.forEach((v, k) => assert.ok(Math.abs(v - facelift[i]!.w2c[k]!) < 1e-6)));
  assert.equal((await sharp(join(train[0]!, 'images/cam_005.png')).metadata()).channels, 3);

  const gsDir = join(root, 'gslrm');
  const gsLines: string[] = [];
  // At 48² (as the fork's lowmem GS-LRM trains at 384² behind 512² views): pack sets the pipeline's size for infer.
  const gs = await trainGslrm({
    config: join(CONFIGS, 'mouse_gslrm_lowmem.yaml'),
    sets: [
      'model.image_tokenizer.image_size=48', 'model.transformer.d=64', 'model.transformer.d_head=16',
      'model.transformer.n_layer=2', `training.dataset.dataset_path=${join(gen, 'data_train.txt')}`,
      `training.checkpointing.resume_ckpt=${join(TINY_GSLRM, 'ckpt_0000000000000042.pt')}`,
      `training.checkpointing.checkpoint_dir=${gsDir}`, 'training.checkpointing.checkpoint_every=2',
      'training.schedule.max_fwdbwd_passes=2', 'training.runtime.grad_accum_steps=1',
      'training.losses.perceptual_loss_weight=0',
    ],
    threads: 2,
    say: (l) => gsLines.push(l),
  });
  assert.ok(gs.pass >= 2 && gs.checkpoint, JSON.stringify(gs));
  assert.match(gsLines.join('\n'), /initialising weights from .*ckpt_0000000000000042\.pt/);

  const weights = join(root, 'weights');
  await packDemo({ pipeline: mv.exported!, gslrmRun: gsDir, gslrmConfig: join(gsDir, 'config.yaml'), out: weights });
  const models = await loadModels({ weights, matting: 'none', cacheDir: join(root, 'cache'), threads: 2,
    renderThreads: 2 });
  try {
    // A held-out frame's reference view, as a photo on white.
    const held = join(centred, val[0]!.split('/').at(-1)!, 'images/cam_000.png');
    const photo = join(root, 'mouse.png');
    await sharp(held).flatten({ background: '#ffffff' }).png().toFile(photo);
    const out = join(root, 'result');
    const res = await runInference(photo, { models, outDir: out, autoCrop: false, steps: 2, turntableFrames: 3 });
    assert.deepEqual(readdirSync(out).sort(), [...OUTPUT_FILES].sort());
    assert.equal(res.imageSize, 64);
  } finally {
    await models.close();
  }
});
