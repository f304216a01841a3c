import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { addNoise, ddimSchedule, ddimStep, ddimStepScalars, ddimTimesteps, guide, velocity } from './ddim.ts';
import { readSchedulerConfig } from './noise-schedule.ts';
import { GOLDEN, f32, maxAbsDiff, readSafetensors, tensor } from './testing/golden.ts';

const dir = join(GOLDEN, 'ddim');
const g = await readSafetensors(join(dir, 'ddim.safetensors'));
const sched = ddimSchedule(readSchedulerConfig(join(dir, 'scheduler_config.json'), 'ddim/scheduler_config.json', 'DDIMScheduler'));

test('ᾱ table and final ᾱ match diffusers (rtol 2e-6)', () => {
  const ref = tensor(g, 'alphas_cumprod').data;
  for (let i = 0; i < 1000; i++) {
    assert.ok(Math.abs(sched.alphasCumprod[i] - ref[i]) <= 2e-6 * ref[i], `ᾱ[${i}] ${sched.alphasCumprod[i]} vs ${ref[i]}`);
  }
  assert.ok(maxAbsDiff(Float64Array.from(sched.alphasCumprod.subarray(0, 1)), tensor(g, 'final_alpha_cumprod').data) <= 1e-9);
  assert.equal(sched.finalAlphaCumprod, sched.alphasCumprod[0]);
});

test('leading timesteps for 50 and 20 steps are exact; every count 1–100 is valid', () => {
  assert.deepEqual(ddimTimesteps(sched, 50), Array.from(tensor(g, 'timesteps_50').data));
  assert.deepEqual(ddimTimesteps(sched, 20), Array.from(tensor(g, 'timesteps_20').data));
  assert.deepEqual(ddimTimesteps(sched, 4), [751, 501, 251, 1]);
  for (let n = 1; n <= 100; n++) {
    const ts = ddimTimesteps(sched, n);
    assert.equal(ts.length, n);
    assert.equal(ts[n - 1], 1);
    assert.ok(ts.every((t, i) => t >= 0 && t < 1000 && (i === 0 || t < ts[i - 1])));
  }
  assert.throws(() => ddimTimesteps(sched, 0), /1 to 1000/);
  assert.throws(() => ddimTimesteps(sched, 2.5), /integer/);
});

for (const name of ['step0', 'step1', 'step2', 'last']) {
  test(`${name}: prev_sample and x̂₀ within 1e-5 of diffusers (η = 1)`, () => {
    const t = name === 'last' ? 1 : 981 - 20 * Number(name.slice(4));
    const sc = ddimStepScalars(sched, t, 50, 1.0);
    const r = ddimStep(sched, sc, f32(tensor(g, `${name}.model_output`)), f32(tensor(g, `${name}.sample_in`)), f32(tensor(g, `${name}.variance_noise`)));
    assert.ok(maxAbsDiff(r.prevSample, tensor(g, `${name}.prev_sample`).data) <= 1e-5);
    assert.ok(maxAbsDiff(r.predOriginalSample, tensor(g, `${name}.pred_original_sample`).data) <= 1e-5);
  });
}

test('step chain: step1/step2 inputs are the previous outputs', () => {
  assert.ok(maxAbsDiff(tensor(g, 'step0.prev_sample').data, tensor(g, 'step1.sample_in').data) === 0);
  assert.ok(maxAbsDiff(tensor(g, 'x_init').data, tensor(g, 'step0.sample_in').data) === 0);
});

test('η = 0 is deterministic DDIM and needs no noise', () => {
  const sc = ddimStepScalars(sched, 981, 50, 0);
  assert.equal(sc.stdDev, 0);
  const r = ddimStep(sched, sc, f32(tensor(g, 'step0.model_output')), f32(tensor(g, 'step0.sample_in')));
  assert.ok(maxAbsDiff(r.prevSample, tensor(g, 'eta0.prev_sample').data) <= 1e-5);
});

test('a wrong η or a missing noise tensor is caught', () => {
  const sc = ddimStepScalars(sched, 981, 50, 1);
  assert.throws(() => ddimStep(sched, sc, new Float32Array(4), new Float32Array(4)), /noise/);
  const r = ddimStep(sched, ddimStepScalars(sched, 981, 50, 0.5), f32(tensor(g, 'step0.model_output')), f32(tensor(g, 'step0.sample_in')), f32(tensor(g, 'step0.variance_noise')));
  assert.ok(maxAbsDiff(r.prevSample, tensor(g, 'step0.prev_sample').data) > 1e-2);
});

test('training helpers add_noise and get_velocity match (1e-5)', () => {
  const x0 = f32(tensor(g, 'train.x0'));
  const noise = f32(tensor(g, 'train.noise'));
  const ts = Array.from(tensor(g, 'train.timesteps').data);
  const per = x0.length / ts.length;
  const noisy = new Float32Array(x0.length);
  const vel = new Float32Array(x0.length);
  ts.forEach((t, b) => {
    const sl = (a: Float32Array) => a.subarray(b * per, (b + 1) * per);
    noisy.set(addNoise(sched.alphasCumprod, sl(x0), sl(noise), t), b * per);
    vel.set(velocity(sched.alphasCumprod, sl(x0), sl(noise), t), b * per);
  });
  assert.ok(maxAbsDiff(noisy, tensor(g, 'train.add_noise').data) <= 1e-5);
  assert.ok(maxAbsDiff(vel, tensor(g, 'train.velocity').data) <= 1e-5);
});

test('guidance u + s(c − u): s = 1 returns the conditional half', () => {
  const u = Float32Array.from([1, 2, 3]);
  const c = Float32Array.from([2, 0, 3]);
  assert.deepEqual(Array.from(guide(u, c, 1)), [2, 0, 3]);
  assert.deepEqual(Array.from(guide(u, c, 3)), [4, -4, 3]);
});
