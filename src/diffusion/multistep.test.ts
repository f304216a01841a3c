import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { JsonFields } from './json-fields.ts';
import { MultistepSampler, multistepTimesteps, type MultistepKind } from './multistep.ts';
import { parseSchedulerConfig } from './noise-schedule.ts';
import { GOLDEN, readSafetensors } from './testing/golden.ts';

const golden = await readSafetensors(join(GOLDEN, 'multistep/multistep.safetensors'));
const SCHEDULER = join(GOLDEN, 'pipeline-tiny/pipeckpts/scheduler/scheduler_config.json');
const config = parseSchedulerConfig(JsonFields.fromFile(SCHEDULER));

/** The golden's stand-in for the UNet's v-prediction (multistep/README.md). */
const model = (x: Float64Array, t: number) => x.map((v) => Math.tanh(v) * (t / 1000) + 0.1 * Math.cos(v + t / 500));

const CASES: Array<[MultistepKind, number]> = [
  ['dpmpp2m', 10], ['dpmpp2m', 15], ['dpmpp2m', 20], ['dpmpp2m', 25], ['unipc', 10], ['unipc', 15], ['unipc', 20],
];

for (const [kind, steps] of CASES) {
  const name = `${kind === 'dpmpp2m' ? 'dpmpp2m' : 'unipc'}_${steps}`;
  test(`${name}: diffusers' trajectory step by step (float64 model stand-in)`, () => {
    const s = new MultistepSampler(kind, config, steps);
    assert.deepEqual(s.timesteps, Array.from(golden.get(`${name}.timesteps`)!.data));
    let x = golden.get('x_T')!.data;
    let worst = 0;
    s.timesteps.forEach((t, i) => {
      x = s.step(model(x, t), x).prevSample;
      const want = golden.get(`${name}.step${String(i).padStart(2, '0')}`)!.data;
      let num = 0, den = 0;
      for (let k = 0; k < x.length; k++) {
        num = Math.max(num, Math.abs(x[k]! - want[k]!));
        den = Math.max(den, Math.abs(want[k]!));
      }
      worst = Math.max(worst, num / den);
    });
    // The reference keeps σ, α, λ in float32 and (DPM-Solver) casts the sample to float32 each step.
    assert.ok(worst < 1e-6, `worst relative error over the run ${worst}`);
    const final = golden.get(`${name}.final`)!.data;
    for (let k = 0; k < x.length; k++) assert.ok(Math.abs(x[k]! - final[k]!) < 1e-5);
  });
}

test('timestep spacings as diffusers sets them', () => {
  assert.deepEqual(multistepTimesteps(config, 20).slice(0, 3), [941, 894, 847]);
  assert.deepEqual(multistepTimesteps({ ...config, timestepSpacing: 'trailing' }, 4), [999, 749, 499, 249]);
  assert.deepEqual(multistepTimesteps({ ...config, timestepSpacing: 'linspace' }, 3), [999, 666, 333]);
  assert.throws(() => multistepTimesteps(config, 0), /from 1 to 1000/);
});

test('the sampler refuses a step past the last timestep and a mismatched model output', () => {
  const s = new MultistepSampler('unipc', config, 1);
  const x = new Float64Array(4).fill(0.3);
  assert.throws(() => s.step(new Float64Array(3), x), /model output has 3 values/);
  s.step(new Float64Array(4), x);
  assert.throws(() => s.step(new Float64Array(4), x), /every timestep has been stepped/);
});
