/**
 * Honest progress for one image: the overall fraction weights every stage by its expected time (the diffusion
 * steps take most of a real run), and the time left comes from measured speed: the running stage's own rate per
 * step, the other stages' expected times scaled by how fast this machine has been so far. The CLI's progress line,
 * the server's job views (JSON and SSE) and the web page all use these functions.
 */
import type { ImageStage } from './events.ts';

/** Expected cost of a stage: a fixed part plus a part per step. */
export interface StageCost {
  fixedMs: number;
  perStepMs: number;
}

export type CostTable = Readonly<Record<string, StageCost>>;

/** One stage of a job as planned before it starts: the steps it will report and what they are expected to cost. */
export interface PlannedStage {
  stage: string;
  steps: number;
  cost: StageCost;
}

/** Where a stage is now; `elapsedMs` is its duration when done, the time since it started while running. */
export interface StageProgress {
  stage: string;
  state: 'pending' | 'running' | 'done';
  step: number;
  total: number;
  elapsedMs: number;
  /** While running: `elapsedMs` when `step` was reported (default `elapsedMs`); the rate per step is measured to it. */
  atStepMs?: number;
}

export interface Estimate {
  /** Share of the expected work done, 0..1; never goes back while steps go forward. */
  fraction: number;
  /** Expected time left, ms; null until something has been measured that says how fast this run goes. */
  remainingMs: number | null;
}

/**
 * Official-size costs on a 2-core CPU (BENCHMARKS.md § infer, `npm run bench -- infer`): a UNet step of 6 views ×
 * CFG ≈ 45 s; CLIP, VAE encode and the 6 VAE decodes ≈ 48 s around them; 24 GS-LRM layers ≈ 260 s; a 512² turntable
 * frame of 1.57 M Gaussians ≈ 0.24 s. They set the bar's weights until a finished job calibrates them.
 */
export const OFFICIAL_CPU_COSTS: Readonly<Record<ImageStage, StageCost>> = {
  preprocess: { fixedMs: 3_000, perStepMs: 0 },
  diffusion: { fixedMs: 48_000, perStepMs: 44_700 },
  reconstruct: { fixedMs: 260_000, perStepMs: 0 },
  render: { fixedMs: 0, perStepMs: 400 },
  filter: { fixedMs: 800, perStepMs: 0 },
  turntable: { fixedMs: 0, perStepMs: 240 },
  write: { fixedMs: 500, perStepMs: 0 },
};

/** The stages of `runInference` for one image with `steps` DDIM steps and a turntable of `frames` frames. */
export function inferencePlan(o: { steps: number; frames: number; views?: number }, costs: CostTable = OFFICIAL_CPU_COSTS): PlannedStage[] {
  const steps: Record<ImageStage, number> = {
    preprocess: 1,
    diffusion: o.steps,
    reconstruct: 1,
    render: o.views ?? 6,
    filter: 1,
    turntable: o.frames,
    write: 1,
  };
  return (Object.keys(steps) as ImageStage[]).map((stage) => ({
    stage,
    steps: steps[stage],
    cost: costs[stage] ?? OFFICIAL_CPU_COSTS[stage],
  }));
}

export function expectedMs(p: PlannedStage): number {
  return Math.max(1, p.cost.fixedMs + p.cost.perStepMs * p.steps);
}

/** The share of a stage done according to its own steps. */
function doneShare(s: StageProgress | undefined): number {
  if (!s || s.state === 'pending') return 0;
  if (s.state === 'done') return 1;
  return s.total > 0 ? Math.min(1, s.step / s.total) : 0;
}

/** Before this share of the expected work has been measured, a speed estimate would be a guess. */
const MEASURED_ENOUGH = 0.01;

/**
 * `calibrated`: the plan's costs were measured on this machine (`calibrate` of an earlier run), so they stand for
 * the time left even before this run has measured anything.
 */
export function estimate(
  plan: readonly PlannedStage[],
  progress: readonly StageProgress[],
  opts: { calibrated?: boolean } = {},
): Estimate {
  const byStage = new Map(progress.map((s) => [s.stage, s]));
  const expected = plan.map(expectedMs);
  const sum = expected.reduce((a, b) => a + b, 0);
  let done = 0;
  let measuredMs = 0;
  let measuredExpected = 0;
  plan.forEach((p, i) => {
    const s = byStage.get(p.stage);
    const share = doneShare(s);
    done += share * expected[i]!;
    if (s?.state === 'done' || (s?.state === 'running' && s.step > 0)) {
      measuredMs += s.state === 'done' ? s.elapsedMs : (s.atStepMs ?? s.elapsedMs);
      measuredExpected += share * expected[i]!;
    }
  });
  const fraction = Math.min(1, done / sum);
  const running = progress.find((s) => s.state === 'running' && s.step > 0);
  const measured = measuredExpected >= MEASURED_ENOUGH * sum || running !== undefined;
  if (!measured && !opts.calibrated) return { fraction, remainingMs: null };
  // This machine's speed relative to the expected costs, from everything measured so far.
  const speed = measured && measuredExpected > 0 ? measuredMs / measuredExpected : 1;
  let remainingMs = 0;
  plan.forEach((p, i) => {
    const s = byStage.get(p.stage);
    if (s?.state === 'done') return;
    if (s?.state === 'running' && s.step > 0) {
      const at = s.atStepMs ?? s.elapsedMs;
      remainingMs += Math.max(0, (at / s.step) * Math.max(0, s.total - s.step) - (s.elapsedMs - at));
    } else {
      remainingMs += Math.max(0, expected[i]! * speed - (s?.state === 'running' ? s.elapsedMs : 0));
    }
  });
  return { fraction, remainingMs };
}

/**
 * The costs a finished run measured: each done stage's planned cost scaled to its measured time (the next job's
 * estimate starts from these). Stages that did not finish keep their planned cost.
 */
export function calibrate(plan: readonly PlannedStage[], progress: readonly StageProgress[]): Record<string, StageCost> {
  const out: Record<string, StageCost> = {};
  for (const p of plan) {
    const s = progress.find((x) => x.stage === p.stage);
    const r = s?.state === 'done' ? Math.max(s.elapsedMs, 1) / expectedMs(p) : 1;
    out[p.stage] = { fixedMs: p.cost.fixedMs * r, perStepMs: p.cost.perStepMs * r };
  }
  return out;
}

/** "~25 min left", "~40 s left", "~2 h 10 min left". */
export function formatRemaining(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `~${Math.max(1, s)} s left`;
  const min = Math.round(s / 60);
  if (min < 90) return `~${min} min left`;
  return `~${Math.floor(min / 60)} h ${min % 60} min left`;
}
