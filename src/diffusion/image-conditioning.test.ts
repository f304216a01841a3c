import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { imageClassLabel, noiseLevelZero, timestepEmbedding } from './image-conditioning.ts';
import { readSchedulerConfig } from './noise-schedule.ts';
import { GOLDEN, f32, maxAbsDiff, readSafetensors, tensor } from './testing/golden.ts';

const pipe = join(GOLDEN, 'pipeline-tiny');
const cases = await readSafetensors(join(pipe, 'cases.safetensors'));
const norm = await readSafetensors(join(pipe, 'pipeckpts/image_normalizer/diffusion_pytorch_model.safetensors'));
const noising = readSchedulerConfig(join(pipe, 'pipeckpts/image_noising_scheduler/scheduler_config.json'), 'image_noising_scheduler/scheduler_config.json', 'DDPMScheduler');

test('noise level 0 of the squaredcos_cap_v2 noising scheduler: √ᾱ₀, √(1−ᾱ₀) as the reference', () => {
  const z = noiseLevelZero(noising);
  assert.equal(z.sqrtAlpha, Math.fround(0.9999793171882629));
  assert.ok(Math.abs(z.sqrtOneMinusAlpha - 0.006426976062357426) < 1e-9, String(z.sqrtOneMinusAlpha));
});

test('sinusoidal time embedding matches the UNet time_proj (mvdiff-tiny t_emb, 1e-5)', async () => {
  const inter = await readSafetensors(join(GOLDEN, 'mvdiff-tiny/intermediates.safetensors'));
  const ts = [...Array(6).fill(981), ...Array(6).fill(37)];
  const emb = timestepEmbedding(ts, 8, { flipSinToCos: true, downscaleFreqShift: 0 });
  assert.ok(maxAbsDiff(emb, tensor(inter, 't_emb').data) <= 1e-5);
  // noise level 0: cos(0) = 1 first, sin(0) = 0 second
  assert.deepEqual(Array.from(timestepEmbedding([0], 6, { flipSinToCos: true, downscaleFreqShift: 0 })), [1, 1, 1, 0, 0, 0]);
});

for (const c of ['cfg3_eta1', 'cfg1_eta1']) {
  test(`${c}: scaled / noised / augmented embedding and class label within 2e-5`, () => {
    const r = imageClassLabel(
      f32(tensor(cases, `${c}.image_embeds.clip`)), 16,
      { mean: f32(tensor(norm, 'mean')), std: f32(tensor(norm, 'std')) },
      noiseLevelZero(noising), f32(tensor(cases, `${c}.noise.image_embeds`)),
    );
    assert.ok(maxAbsDiff(r.scaled, tensor(cases, `${c}.image_embeds.scaled`).data) <= 2e-5);
    assert.ok(maxAbsDiff(r.noised, tensor(cases, `${c}.image_embeds.noised`).data) <= 2e-5);
    assert.ok(maxAbsDiff(r.augmented, tensor(cases, `${c}.image_embeds.augmented`).data) <= 2e-5);
    const labels = tensor(cases, `${c}.class_labels`).data;
    // With CFG the reference prepends 6 all-zero unconditional rows.
    const cond = labels.subarray(labels.length - r.label.length);
    assert.ok(maxAbsDiff(r.label, cond) <= 2e-5);
    // Dropping the noise is the easy mistake; it must be visible at this tolerance.
    const noNoise = imageClassLabel(f32(tensor(cases, `${c}.image_embeds.clip`)), 16,
      { mean: f32(tensor(norm, 'mean')), std: f32(tensor(norm, 'std')) }, noiseLevelZero(noising), new Float32Array(96));
    assert.ok(maxAbsDiff(noNoise.augmented, tensor(cases, `${c}.image_embeds.augmented`).data) > 1e-3);
  });
}
