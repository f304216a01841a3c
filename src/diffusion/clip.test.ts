import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Graph, Session } from '../core/index.ts';
import { declareClipTextParams, declareClipVisionParams } from './clip-params.ts';
import { ClipText, ClipVision } from './clip.ts';
import { parseClipTextConfig, parseClipVisionConfig } from './config.ts';
import { JsonFields } from './json-fields.ts';
import { paramSpecs } from './params.ts';
import { GOLDEN, f32, maxAbsDiff, readSafetensors, tensor } from './testing/golden.ts';
import type { Taps } from './unet.ts';
import { loadWeights } from './weights.ts';

test('CLIP vision tower + projection (clip-tiny): image_embeds, hidden states and pooled output within 1e-5', async () => {
  const dir = join(GOLDEN, 'clip-tiny');
  const cfg = parseClipVisionConfig(JsonFields.fromFile(join(dir, 'config.json'), 'clip-tiny/config.json'));
  const inputs = await readSafetensors(join(dir, 'inputs.safetensors'));
  const outputs = await readSafetensors(join(dir, 'outputs.safetensors'));
  const inter = await readSafetensors(join(dir, 'intermediates.safetensors'));
  const g = new Graph('clip');
  const taps: Taps = {};
  const embeds = new ClipVision(g, cfg).forward(g.input('pixel_values', [2, 3, 56, 56]), taps);
  const params = await loadWeights(join(dir, 'model.safetensors'), paramSpecs((d) => declareClipVisionParams(d, cfg)), 'image_encoder');
  const s = await Session.create({ image_embeds: embeds, ...taps }, { params, threads: 2 });
  const r = await s.run({ pixel_values: f32(tensor(inputs, 'pixel_values')) });
  await s.release();
  const check = (name: string, ref: { data: Float64Array }) => {
    const d = maxAbsDiff(r[name]!.data as Float32Array, ref.data);
    assert.ok(d <= 1e-5, `${name}: max |Δ| ${d}`);
  };
  check('image_embeds', tensor(outputs, 'image_embeds'));
  check('last_hidden_state', tensor(outputs, 'last_hidden_state'));
  for (const k of ['embeddings', 'hidden_states.0', 'hidden_states.1', 'hidden_states.2']) check(k, tensor(inter, k));
  check('pooled_output', tensor(inter, 'pooled_output(post_layernorm CLS)'));
});

test('CLIP text encoder (pipeline-tiny, fp16 weights): last_hidden_state of the 6 prompts within 2e-5', async () => {
  const pipe = join(GOLDEN, 'pipeline-tiny');
  const cases = await readSafetensors(join(pipe, 'cases.safetensors'));
  const cfg = parseClipTextConfig(JsonFields.fromFile(join(pipe, 'pipeckpts/text_encoder/config.json'), 'text_encoder/config.json'));
  const g = new Graph('clip-text');
  const hidden = new ClipText(g, cfg).forward(g.input('input_ids', [6, 77], 'int64'));
  const params = await loadWeights(join(pipe, 'pipeckpts/text_encoder'), paramSpecs((d) => declareClipTextParams(d, cfg)), 'text_encoder');
  const s = await Session.create({ hidden }, { params, threads: 2 });
  const ids = BigInt64Array.from(tensor(cases, 'common.prompt_ids').data, (v) => BigInt(v));
  const r = await s.run({ input_ids: ids });
  await s.release();
  const d = maxAbsDiff(r.hidden!.data as Float32Array, tensor(cases, 'common.text_hidden_fp32').data);
  assert.ok(d <= 2e-5, `max |Δ| ${d}`);
});
