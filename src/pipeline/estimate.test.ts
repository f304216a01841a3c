import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  calibrate,
  estimate,
  expectedMs,
  formatRemaining,
  inferencePlan,
  type PlannedStage,
  type StageProgress,
} from './estimate.ts';

/** A simulated run: each stage takes `slow` × its expected time, steps evenly spaced; snapshots every `everyMs`. */
function simulate(plan: PlannedStage[], slow: number, everyMs: number) {
  const durations = plan.map((p) => expectedMs(p) * slow);
  const total = durations.reduce((a, b) => a + b, 0);
  const snaps: Array<{ t: number; progress: StageProgress[] }> = [];
  for (let t = 0; ; t = Math.min(total, t + everyMs)) {
    let start = 0;
    const progress = plan.map((p, i): StageProgress => {
      const d = durations[i]!;
      const s0 = start;
      start += d;
      if (t >= s0 + d) return { stage: p.stage, state: 'done', step: p.steps, total: p.steps, elapsedMs: d };
      if (t < s0) return { stage: p.stage, state: 'pending', step: 0, total: p.steps, elapsedMs: 0 };
      const step = Math.floor(((t - s0) / d) * p.steps);
      return { stage: p.stage, state: 'running', step, total: p.steps, elapsedMs: t - s0, atStepMs: (step / p.steps) * d };
    });
    snaps.push({ t, progress });
    if (t >= total) break;
  }
  return { snaps, total };
}

test('the bar weights stages by expected time: diffusion is most of a 50-step official run', () => {
  const plan = inferencePlan({ steps: 50, frames: 180 });
  const stages = plan.map((p) => p.stage);
  const at = (doneUpTo: string): number => {
    const k = stages.indexOf(doneUpTo);
    return estimate(
      plan,
      plan.map((p, i) => ({
        stage: p.stage,
        state: i <= k ? 'done' : 'pending',
        step: i <= k ? p.steps : 0,
        total: p.steps,
        elapsedMs: 1,
      })),
    ).fraction;
  };
  assert.ok(at('preprocess') < 0.01, `after preprocessing ${at('preprocess')}`);
  assert.ok(at('diffusion') > 0.85 && at('diffusion') < 0.95, `after diffusion ${at('diffusion')}`);
  assert.equal(at('write'), 1);
  // Equal shares would have said 2/7 after diffusion.
});

test('the estimate follows the measured speed: unknown at first, then within 5 % of the truth, counting down', () => {
  const plan = inferencePlan({ steps: 20, frames: 30 });
  const { snaps, total } = simulate(plan, 3, 5_000);
  let lastFraction = 0;
  let known = 0;
  let lastRemaining = Infinity;
  for (const { t, progress } of snaps) {
    const e = estimate(plan, progress);
    assert.ok(e.fraction >= lastFraction - 1e-12, `fraction went back at ${t}`);
    lastFraction = e.fraction;
    const diffusion = progress.find((s) => s.stage === 'diffusion')!;
    if (diffusion.state === 'pending' || (diffusion.state === 'running' && diffusion.step === 0)) {
      assert.equal(e.remainingMs, null, `at ${t} ms nothing measured says how fast this run goes`);
      continue;
    }
    assert.notEqual(e.remainingMs, null);
    known++;
    const truth = total - t;
    assert.ok(Math.abs(e.remainingMs! - truth) <= 0.05 * total, `at ${t}: ${e.remainingMs} vs ${truth}`);
    assert.ok(e.remainingMs! <= lastRemaining + 1e-6 * total, `at ${t}: ${e.remainingMs} after ${lastRemaining}`);
    lastRemaining = e.remainingMs!;
  }
  assert.ok(known > 10);
});

test('a run calibrated by the previous one is estimated from the start', () => {
  const plan = inferencePlan({ steps: 20, frames: 30 });
  const { snaps, total } = simulate(plan, 0.01, 20);
  const costs = calibrate(plan, snaps.at(-1)!.progress);
  const next = inferencePlan({ steps: 30, frames: 30 }, costs);
  const start = next.map((p): StageProgress => ({ stage: p.stage, state: 'pending', step: 0, total: p.steps, elapsedMs: 0 }));
  assert.equal(estimate(next, start).remainingMs, null);
  const e = estimate(next, start, { calibrated: true });
  const expectedTotal = total + 10 * (costs.diffusion!.perStepMs);
  assert.ok(Math.abs(e.remainingMs! - expectedTotal) < 1e-6 * expectedTotal, `${e.remainingMs} vs ${expectedTotal}`);
});

test('time left reads as people say it', () => {
  assert.equal(formatRemaining(40_400), '~40 s left');
  assert.equal(formatRemaining(300), '~1 s left');
  assert.equal(formatRemaining(25 * 60_000 + 10_000), '~25 min left');
  assert.equal(formatRemaining(130 * 60_000), '~2 h 10 min left');
});
