import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseClipTextConfig, parseClipVisionConfig, parseImageNormalizerConfig, parseUNetConfig, parseVaeConfig, readComponentConfig, readModelIndex } from './config.ts';
import { JsonFields } from './json-fields.ts';
import { readSchedulerConfig } from './noise-schedule.ts';
import { GOLDEN } from './testing/golden.ts';

const pipe = join(GOLDEN, 'pipeline-tiny/pipeckpts');
const fromFile = (p: string) => JsonFields.fromFile(join(GOLDEN, p), p);
const edited = (p: string, patch: Record<string, unknown>) =>
  JsonFields.fromText(JSON.stringify({ ...JSON.parse(readFileSync(join(GOLDEN, p), 'utf8')), ...patch }), p);

test('official UNet config (SD-2.1-unclip + FaceLift overrides)', () => {
  const c = parseUNetConfig(fromFile('official-keys/unet_mv_config.json'));
  assert.deepEqual(c.blockOutChannels, [320, 640, 1280, 1280]);
  assert.deepEqual(c.heads, [5, 10, 20, 20]);
  assert.equal(c.inChannels, 8);
  assert.equal(c.classEmbedInputDim, 2048);
  assert.equal(c.multiViewAttention, 'sparse');
  assert.equal(c.numViews, 6);
  assert.equal(c.crossAttentionDim, 1024);
  assert.equal(c.sampleSize, 64);
});

test('tiny UNet configs (mvdiff-tiny, pipeline-tiny) parse', () => {
  const a = parseUNetConfig(fromFile('mvdiff-tiny/config.json'));
  const b = readComponentConfig(pipe, 'unet', parseUNetConfig);
  assert.deepEqual(a.heads, [2, 4, 8, 8]);
  assert.equal(a.sampleSize, 16);
  assert.equal(b.sampleSize, 8);
  assert.deepEqual({ ...a, sampleSize: 0 }, { ...b, sampleSize: 0 });
});

test('UNet config errors name the field and the problem', () => {
  assert.throws(() => parseUNetConfig(edited('mvdiff-tiny/config.json', { resnet_time_scale_shift: 'scale_shift' })), /resnet_time_scale_shift.*"default".*found "scale_shift"/);
  assert.throws(() => parseUNetConfig(edited('mvdiff-tiny/config.json', { block_out_channels: [8, 16, 32] })), /block_out_channels.*4 positive integers/);
  assert.throws(() => parseUNetConfig(edited('mvdiff-tiny/config.json', { cd_attention_mid: true })), /cd_attention_mid/);
  assert.throws(() => parseUNetConfig(edited('mvdiff-tiny/config.json', { attention_head_dim: [3, 4, 8, 8] })), /not divisible by attention_head_dim\[0\]/);
  assert.throws(() => parseUNetConfig(edited('mvdiff-tiny/config.json', { num_views: undefined })), /"num_views".*missing/);
  assert.equal(parseUNetConfig(edited('mvdiff-tiny/config.json', { sparse_mv_attention: false })).multiViewAttention, 'dense');
});

test('VAE configs: official and tiny', () => {
  const o = parseVaeConfig(fromFile('official-keys/vae_config.json'));
  assert.deepEqual(o.blockOutChannels, [128, 256, 512, 512]);
  assert.equal(o.scalingFactor, 0.18215);
  assert.equal(o.latentChannels, 4);
  const t = readComponentConfig(pipe, 'vae', parseVaeConfig);
  assert.equal(t.normNumGroups, 4);
  assert.equal(parseVaeConfig(fromFile('vae-tiny/config.json')).sampleSize, 32);
  assert.throws(() => parseVaeConfig(edited('vae-tiny/config.json', { use_quant_conv: false })), /use_quant_conv/);
});

test('CLIP vision configs: official ViT-H/14 and tiny', () => {
  const o = parseClipVisionConfig(fromFile('official-keys/clip_vision_config.json'));
  assert.deepEqual([o.hiddenSize, o.numLayers, o.numHeads, o.imageSize, o.patchSize, o.projectionDim], [1280, 32, 16, 224, 14, 1024]);
  assert.equal(parseClipVisionConfig(fromFile('clip-tiny/config.json')).patchSize, 14);
  assert.equal(readComponentConfig(pipe, 'image_encoder', parseClipVisionConfig).patchSize, 8);
  assert.throws(() => parseClipVisionConfig(edited('clip-tiny/config.json', { hidden_act: 'relu' })), /hidden_act.*"gelu"/);
});

test('text encoder, image normaliser, schedulers and model_index of pipeline-tiny', () => {
  const te = readComponentConfig(pipe, 'text_encoder', parseClipTextConfig);
  assert.deepEqual([te.vocabSize, te.hiddenSize, te.numLayers, te.maxPositions, te.eosTokenId], [556, 32, 2, 77, 2]);
  assert.equal(readComponentConfig(pipe, 'image_normalizer', parseImageNormalizerConfig).embeddingDim, 16);
  const ddim = readSchedulerConfig(join(pipe, 'scheduler/scheduler_config.json'), 'scheduler/scheduler_config.json', 'DDIMScheduler');
  assert.deepEqual([ddim.predictionType, ddim.timestepSpacing, ddim.stepsOffset, ddim.setAlphaToOne], ['v_prediction', 'leading', 1, false]);
  const ddpm = readSchedulerConfig(join(pipe, 'image_noising_scheduler/scheduler_config.json'), 'x', 'DDPMScheduler');
  assert.equal(ddpm.betaSchedule, 'squaredcos_cap_v2');
  assert.throws(() => readSchedulerConfig(join(pipe, 'scheduler/scheduler_config.json'), 'scheduler/scheduler_config.json', 'DDPMScheduler'), /expected a DDPMScheduler/);
  const idx = readModelIndex(pipe);
  assert.equal(idx.components.size, 9);
  assert.throws(() => readModelIndex(GOLDEN), /no model_index.json/);
});
