import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { GOLDEN, f32, maxAbsDiff, readSafetensors, tensor } from './testing/golden.ts';
import { MultistepSampler } from './multistep.ts';
import { MvDiffusionPipeline, type StepEvent } from './pipeline.ts';
import { RecordedNoise, type NoiseSite } from './rng.ts';

const dir = join(GOLDEN, 'pipeline-tiny');
const cases = await readSafetensors(join(dir, 'cases.safetensors'));
const image = { width: 64, height: 64, data: Uint8Array.from(tensor(cases, 'common.input_image_u8').data) };
const pipe = await MvDiffusionPipeline.load(join(dir, 'pipeckpts'), { promptEmbeds: join(dir, 'clr_embeds.pt'), threads: 2 });
after(() => pipe.close());

function recorded(c: string, eta: number): RecordedNoise {
  const draw = (site: NoiseSite, name: string) => {
    const t = tensor(cases, `${c}.noise.${name}`);
    return { site, shape: t.shape, data: f32(t) };
  };
  const steps = eta > 0 ? [0, 1, 2, 3].map((i) => draw('step', `step${i}`)) : [];
  return new RecordedNoise([draw('image_embeds', 'image_embeds'), draw('latents', 'latents'), ...steps]);
}

const within = (got: ArrayLike<number>, name: string, tol: number) => {
  const d = maxAbsDiff(got, tensor(cases, name).data);
  if (process.env.DEBUG_GOLDEN) console.log(name, d);
  assert.ok(d <= tol, `${name}: max |Δ| ${d} > ${tol}`);
};

for (const [c, scale, eta] of [['cfg3_eta1', 3, 1], ['cfg3_eta0', 3, 0], ['cfg1_eta1', 1, 1]] as const) {
  test(`pipeline-tiny ${c}: end to end with the recorded noise, every recorded tensor within tolerance`, async () => {
    const noise = recorded(c, eta);
    const events: StepEvent[] = [];
    const r = await pipe.generate(image, { steps: 4, guidanceScale: scale, eta, noise }, (e) => events.push(e));
    noise.assertDrained();
    assert.deepEqual(events.map((e) => e.timestep), Array.from(tensor(cases, `${c}.timesteps`).data));
    assert.deepEqual(events.map((e) => [e.step, e.total]), [[0, 4], [1, 4], [2, 4], [3, 4]]);
    within(r.classLabels, `${c}.class_labels`, 2e-5);
    within(r.imageLatents, `${c}.image_latents`, 5e-6);
    events.forEach((e, i) => {
      within(e.unetOutput, `${c}.step${i}.unet_output`, 5e-5);
      within(e.modelOutput, `${c}.step${i}.model_output`, 1e-4);
      within(e.predOriginalSample, `${c}.step${i}.pred_original_sample`, 1e-4);
      within(e.latents, `${c}.step${i}.prev_sample`, 5e-5);
    });
    within(r.decoded, `${c}.decoded`, 2e-4);
    const ref = tensor(cases, `${c}.images_uint8`).data;
    const got = new Uint8Array(ref.length);
    r.images.forEach((im, v) => got.set(im.data, v * im.data.length));
    let off = 0;
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs(got[i]! - ref[i]!);
      assert.ok(d <= 1, `uint8 value ${i} differs by ${d}`);
      if (d) off++;
    }
    if (process.env.DEBUG_GOLDEN) console.log(c, 'uint8 values off by one:', off);
    assert.ok(off <= 0.005 * got.length, `${off} uint8 values differ`);
  });
}

test('seeded sampling is deterministic and reports progress per step', async () => {
  const run = async (seed: number) => {
    let steps = 0;
    const r = await pipe.generate(image, { steps: 2, guidanceScale: 2, seed }, () => steps++);
    assert.equal(steps, 2);
    return r.latents;
  };
  const a = await run(7);
  assert.deepEqual(a, await run(7));
  assert.ok(maxAbsDiff(a, await run(8)) > 1e-3);
  await assert.rejects(pipe.generate(image, { steps: 0 }), /1 to 1000/);
  await assert.rejects(pipe.generate({ width: 32, height: 32, data: new Uint8Array(32 * 32 * 3) }), /must be 64×64/);
});

test('without clr_embeds.pt the pipeline computes the prompt embeddings from its text encoder', async () => {
  const p2 = await MvDiffusionPipeline.load(join(dir, 'pipeckpts'), { threads: 2 });
  try {
    assert.deepEqual([p2.prompts.views, p2.prompts.tokens, p2.prompts.width], [6, 77, 32]);
    assert.ok(maxAbsDiff(p2.prompts.data, pipe.prompts.data) <= 5e-3);
  } finally {
    await p2.close();
  }
});

test('step counts 1 and 100, guidance 10 and 1: runs to the end with finite views', async () => {
  for (const [steps, guidanceScale] of [[1, 10], [100, 1]] as const) {
    let n = 0;
    const r = await pipe.generate(image, { steps, guidanceScale, seed: 1 }, () => n++);
    assert.equal(n, steps);
    assert.equal(r.images.length, 6);
    assert.ok(r.latents.every(Number.isFinite) && r.decoded.every(Number.isFinite));
  }
});

test('multistep samplers in the loop: the guided output and the current latents feed the sampler, its timesteps, no ' +
  'step noise', async () => {
  for (const scheduler of ['dpmpp2m', 'unipc'] as const) {
    const events: StepEvent[] = [];
    const noise = recorded('cfg3_eta0', 0);
    const r = await pipe.generate(image, { steps: 4, guidanceScale: 3, noise, scheduler }, (e) => events.push(e));
    noise.assertDrained(); // the latents and image-embedding draws only: multistep steps take no noise
    const replay = new MultistepSampler(scheduler, pipe.schedule.config, 4);
    assert.deepEqual(events.map((e) => e.timestep), replay.timesteps);
    let x: ArrayLike<number> = f32(tensor(cases, 'cfg3_eta0.noise.latents'));
    for (const e of events) {
      x = replay.step(e.modelOutput, x).prevSample;
      assert.ok(maxAbsDiff(e.latents, x) <= 1e-6, `${scheduler} step ${e.step}`);
    }
    assert.ok(r.images.length === 6 && r.decoded.every(Number.isFinite));
    // η has no say in a deterministic sampler.
    const again = await pipe.generate(image, { steps: 4, guidanceScale: 3, noise: recorded('cfg3_eta0', 0), scheduler,
      eta: 1 });
    assert.deepEqual(again.latents, r.latents);
  }
});
