import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { declareClipTextParams, declareClipVisionParams } from './clip-params.ts';
import { parseClipTextConfig, parseClipVisionConfig, parseUNetConfig, parseVaeConfig } from './config.ts';
import { JsonFields } from './json-fields.ts';
import { countParams, paramSpecs, type ParamSpec } from './params.ts';
import { GOLDEN, safetensorsShapes } from './testing/golden.ts';
import { declareUNetParams } from './unet-params.ts';
import { declareVaeParams } from './vae-params.ts';

const cfg = (p: string) => JsonFields.fromFile(join(GOLDEN, p), p);
const official = (f: string) => JSON.parse(readFileSync(join(GOLDEN, 'official-keys', f), 'utf8')) as { param_count: number; n_keys: number; keys: { key: string; shape: number[] }[] };

function assertSameList(got: ParamSpec[], want: { key: string; shape: number[] }[]) {
  assert.equal(got.length, want.length, 'number of keys');
  got.forEach((s, i) => assert.deepEqual([s.name, s.shape], [want[i].key, want[i].shape], `key #${i}`));
}

/** Names/shapes of a tiny model's weight file (safetensors keys are sorted, so compare as maps). */
async function assertSameAsFile(got: ParamSpec[], file: string) {
  const want = await safetensorsShapes(join(GOLDEN, file));
  assert.deepEqual(new Map(got.map((s) => [s.name, s.shape])), want);
  assert.equal(got.length, want.size);
}

test('UNet: full official key/shape list in order, 690 keys, 870,184,644 parameters', () => {
  const ref = official('unet_mv_keys.json');
  const specs = paramSpecs((d) => declareUNetParams(d, parseUNetConfig(cfg('official-keys/unet_mv_config.json'))));
  assertSameList(specs, ref.keys);
  assert.equal(countParams(specs), 870_184_644);
  assert.equal(ref.param_count, 870_184_644);
});

test('VAE: full official key/shape list in order, 248 keys, 83,653,863 parameters', () => {
  const specs = paramSpecs((d) => declareVaeParams(d, parseVaeConfig(cfg('official-keys/vae_config.json'))));
  assertSameList(specs, official('vae_keys.json').keys);
  assert.equal(countParams(specs), 83_653_863);
});

test('CLIP vision + projection: full official key/shape list, 520 keys, 632,076,800 parameters', () => {
  const specs = paramSpecs((d) => declareClipVisionParams(d, parseClipVisionConfig(cfg('official-keys/clip_vision_config.json'))));
  assertSameList(specs, official('clip_vision_with_projection_keys.json').keys);
  assert.equal(countParams(specs), 632_076_800);
});

test('tiny models: declared keys and shapes equal the golden weight files', async () => {
  await assertSameAsFile(paramSpecs((d) => declareUNetParams(d, parseUNetConfig(cfg('mvdiff-tiny/config.json')))), 'mvdiff-tiny/diffusion_pytorch_model.safetensors');
  await assertSameAsFile(paramSpecs((d) => declareVaeParams(d, parseVaeConfig(cfg('vae-tiny/config.json')))), 'vae-tiny/diffusion_pytorch_model.safetensors');
  await assertSameAsFile(paramSpecs((d) => declareClipVisionParams(d, parseClipVisionConfig(cfg('clip-tiny/config.json')))), 'clip-tiny/model.safetensors');
  const p = 'pipeline-tiny/pipeckpts';
  await assertSameAsFile(paramSpecs((d) => declareUNetParams(d, parseUNetConfig(cfg(`${p}/unet/config.json`)))), `${p}/unet/diffusion_pytorch_model.safetensors`);
  await assertSameAsFile(paramSpecs((d) => declareVaeParams(d, parseVaeConfig(cfg(`${p}/vae/config.json`)))), `${p}/vae/diffusion_pytorch_model.safetensors`);
  await assertSameAsFile(paramSpecs((d) => declareClipVisionParams(d, parseClipVisionConfig(cfg(`${p}/image_encoder/config.json`)))), `${p}/image_encoder/model.safetensors`);
  const text = paramSpecs((d) => declareClipTextParams(d, parseClipTextConfig(cfg(`${p}/text_encoder/config.json`))));
  await assertSameAsFile(text, `${p}/text_encoder/model.safetensors`);
  assert.equal(countParams(text), 45_728);
});

test('a wrong config is caught by the key check (control)', () => {
  const c = parseUNetConfig(cfg('official-keys/unet_mv_config.json'));
  const specs = paramSpecs((d) => declareUNetParams(d, { ...c, inChannels: 4 }));
  assert.equal(countParams(specs), 870_173_124); // the SD-2.1-unclip base UNet
  assert.throws(() => assertSameList(specs, official('unet_mv_keys.json').keys));
});

test('the built-in official configs equal the golden official config files', async () => {
  const o = await import('./official.ts');
  assert.deepEqual(o.OFFICIAL_UNET_CONFIG, parseUNetConfig(cfg('official-keys/unet_mv_config.json')));
  assert.deepEqual(o.OFFICIAL_VAE_CONFIG, parseVaeConfig(cfg('official-keys/vae_config.json')));
  assert.deepEqual(o.OFFICIAL_CLIP_VISION_CONFIG, parseClipVisionConfig(cfg('official-keys/clip_vision_config.json')));
});
