/**
 * The demo-model chain at toy sizes, as scripts/train-demo.sh runs it at full demo size: `train vae` → `train
 * new-pipeline` (fresh UNet and image encoder around the VAE, fixed prompt codes, no text encoder) → `train
 * mvdiffusion` from it → `train pack-demo` with a GS-LRM → a weights folder in the official layout that
 * `facelift infer --weights` runs end to end, stored in fp16, labelled official only when it is not the shipped one.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { MvDiffusionPipeline } from '../../diffusion/pipeline.ts';
import { SafetensorsFile } from '../../io/safetensors.ts';
import { loadModels } from '../../pipeline/models.ts';
import { OUTPUT_FILES, runInference } from '../../pipeline/run.ts';
import { TINY_GSLRM } from '../../pipeline/testing/tiny-weights.ts';
import { locateWeights } from '../../pipeline/weights.ts';
import { synthHeads } from '../gslrm/testing/fixtures.ts';
import { trainMvDiffusion } from '../mvdiffusion/run.ts';
import { trainVae } from '../vae/run.ts';
import { writeNewPipeline } from './new-pipeline.ts';
import { packDemo } from './pack.ts';

const root = mkdtempSync(join(tmpdir(), 'fl-demo-chain-'));
after(() => rmSync(root, { recursive: true, force: true }));
const MV_CONFIG = new URL('../../../configs/demo/mvdiffusion.yaml', import.meta.url).pathname;

test('demo chain: train vae → new-pipeline → train mvdiffusion → pack-demo → infer', { timeout: 600_000 }, async () => {
  const data = await synthHeads(join(root, 'heads'), 3, 64, { layout: 'mvdiffusion', valFraction: 0.34, seed: 9 });
  const vaeYaml = join(root, 'vae.yaml');
  writeFileSync(vaeYaml, `seed: 1
output_dir: ${join(root, 'vae')}
vae: { block_out_channels: [4, 8, 8, 8], layers_per_block: 1, norm_num_groups: 4, sample_size: 64, latent_channels: 8 }
data: { train: ${join(data, 'data_mvdiff_train.txt')}, image_size: 64, views_per_sample: 6, background: white }
training: { batch_size: 1, grad_accum: 1, lr: 1.0e-3, warmup: 1, max_passes: 3, kl_weight: 1.0e-6, mse_weight: 1.0,
  grad_clip: 1.0, checkpoint_every: 100, print_every: 1, validate_every: null }
`);
  const vae = await trainVae({ config: vaeYaml, threads: 2, say: () => {} });
  assert.ok(vae.exported);

  const recipe = join(root, 'pipeline.yaml');
  writeFileSync(recipe, `seed: 2
image_size: 64
prompt_tokens: 3
unet: { block_out_channels: [8, 16, 16, 16], attention_head_dim: [1, 2, 2, 2], layers_per_block: 1, cross_attention_dim: 8, norm_num_groups: 4 }
image_encoder: { hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, image_size: 32, patch_size: 8, projection_dim: 8 }
`);
  const init = join(root, 'init/pipeckpts');
  const made = await writeNewPipeline(recipe, vae.exported!, init);
  assert.ok(made.unetParams > 0 && made.encoderParams > 0);
  const index = JSON.parse(readFileSync(join(init, 'model_index.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(index.text_encoder, [null, null]);
  assert.equal(existsSync(join(init, 'text_encoder')), false);
  // It loads as a FaceLift pipeline and samples 6 views with its fixed prompt codes.
  const pipe = await MvDiffusionPipeline.load(init, { promptEmbeds: join(init, 'clr_embeds.pt'), threads: 2 });
  try {
    assert.equal(pipe.imageSize, 64);
    // A latent of 8 channels (SD's has 4): the new UNet takes 16 (noisy ‖ condition) and gives 8 back.
    assert.deepEqual([pipe.latentChannels, pipe.unetConfig.inChannels, pipe.unetConfig.outChannels], [8, 16, 8]);
    assert.deepEqual([pipe.prompts.views, pipe.prompts.tokens, pipe.prompts.width], [6, 3, 8]);
    const out = await pipe.generate({ width: 64, height: 64, data: new Uint8Array(64 * 64 * 3).fill(200) }, { steps: 2 });
    assert.equal(out.images.length, 6);
  } finally {
    await pipe.close();
  }

  const run = await trainMvDiffusion({
    config: MV_CONFIG,
    sets: [
      `pretrained_model_name_or_path=${init}`, `prompt_embed_path=${join(init, 'clr_embeds.pt')}`, 'img_wh=64',
      'unet_from_pretrained_kwargs.sample_size=8', `train_dataset.path=${join(data, 'data_mvdiff_train.txt')}`,
      'validation_dataset.path=null', 'checkpoint_prefix=', `output_dir=${join(root, 'mv')}`, 'max_train_steps=2',
      'checkpointing_steps=2',
    ],
    threads: 2,
    say: () => {},
  });
  assert.ok(run.exported);
  assert.ok(existsSync(join(run.exported!, 'clr_embeds.pt')), 'the export keeps the prompt codes beside the components');

  // A GS-LRM run folder: the golden tiny checkpoint, at the pipeline's image size.
  const gs = join(root, 'gslrm-run');
  mkdirSync(gs);
  copyFileSync(join(TINY_GSLRM, 'ckpt_0000000000000042.pt'), join(gs, 'ckpt_0000000000000042.pt'));
  const gsConfig = join(root, 'gslrm.yaml');
  writeFileSync(gsConfig, readFileSync(join(TINY_GSLRM, 'config.yaml'), 'utf8').replace(/image_size: 32\b/, 'image_size: 64'));
  const out = join(root, 'packed');
  mkdirSync(out);
  writeFileSync(join(out, 'README.md'), 'kept');
  const packed = await packDemo({ pipeline: run.exported!, gslrmRun: gs, gslrmConfig: gsConfig, out });
  assert.equal(readFileSync(join(out, 'README.md'), 'utf8'), 'kept');
  assert.ok(packed.bytes > 0);
  for (const [part, file] of [['unet', 'diffusion_pytorch_model.safetensors'], ['vae', 'diffusion_pytorch_model.safetensors'], ['image_encoder', 'model.safetensors']]) {
    const f = await SafetensorsFile.open(join(out, 'mvdiffusion/pipeckpts', part!, file!));
    try {
      assert.ok(f.keys().every((k) => f.info(k).dtype === 'F16'), `${part} stored in fp16`);
    } finally {
      await f.close();
    }
  }
  const layout = locateWeights(out);
  assert.equal(layout.model, 'official');
  assert.equal(layout.gslrmConfigOrigin, 'override');

  const models = await loadModels({ weights: out, matting: 'none', cacheDir: join(root, 'cache'), threads: 2, renderThreads: 2 });
  try {
    assert.equal(models.promptEmbeds.path, join(out, 'mvdiffusion/clr_embeds.pt'));
    const photo = join(root, 'photo.png');
    await sharp({ create: { width: 96, height: 96, channels: 3, background: { r: 230, g: 190, b: 160 } } }).png().toFile(photo);
    const r = await runInference(photo, { models, outDir: join(root, 'result'), autoCrop: false, steps: 2, turntableFrames: 3 });
    assert.deepEqual(readdirSync(join(root, 'result')).sort(), [...OUTPUT_FILES].sort());
    assert.equal(r.imageSize, 64);
  } finally {
    await models.close();
  }
});
