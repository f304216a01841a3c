import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runTorchPython } from '../io/testing/torch-python.ts';
import { readCheckpoint } from './checkpoint.ts';
import { cosineWithWarmup } from './schedule.ts';
import type { StepResult, TrainStep } from './step.ts';
import { planRun, Trainer, type TrainerConfig } from './trainer.ts';

/** Least squares y ≈ x·W + b on fixed data; W [3, 2] decays, b [2] does not. */
class LinearStep implements TrainStep<number[]> {
  readonly params = new Map([
    ['w', Float32Array.of(0.1, -0.2, 0.3, 0.05, -0.1, 0.2)],
    ['b', Float32Array.of(0, 0)],
  ]);
  readonly shapes = new Map([
    ['w', [3, 2]],
    ['b', [2]],
  ]);
  readonly frozen = new Set<string>();
  readonly grads = new Map<string, Float32Array>();
  readonly seen: number[][] = [];
  /** Passes whose loss is NaN (to test the skip rule). */
  nanAt = new Set<number>();
  /** Multiplies the gradient (to test the ×20 rule). */
  gainAt = new Map<number, number>();
  constructor(
    readonly xs: number[][],
    readonly ys: number[][],
  ) {}
  weightDecay(name: string): number {
    return name === 'w' ? 0.05 : 0;
  }
  async run(batch: number[], pass: number, scale: number): Promise<StepResult> {
    this.seen.push(batch);
    const w = this.params.get('w')!,
      b = this.params.get('b')!;
    const gw = this.grads.get('w')!,
      gb = this.grads.get('b')!;
    const gain = this.gainAt.get(pass) ?? 1;
    let loss = 0;
    const n = batch.length * 2;
    for (const i of batch) {
      const x = this.xs[i]!,
        y = this.ys[i]!;
      for (let j = 0; j < 2; j++) {
        const e = x[0]! * w[j]! + x[1]! * w[2 + j]! + x[2]! * w[4 + j]! + b[j]! - y[j]!;
        loss += (e * e) / n;
        const g = ((2 * e) / n) * scale * gain;
        for (let k = 0; k < 3; k++) gw[2 * k + j] += g * x[k]!;
        gb[j] += g;
      }
    }
    return { loss: this.nanAt.has(pass) ? NaN : loss, metrics: {} };
  }
  async close(): Promise<void> {}
}

function data(n: number): { xs: number[][]; ys: number[][] } {
  const xs: number[][] = [],
    ys: number[][] = [];
  for (let i = 0; i < n; i++) {
    const x = [Math.sin(i + 1), Math.cos(2 * i), (i % 3) - 1];
    xs.push(x);
    ys.push([2 * x[0]! - x[2]! + 0.5, x[1]! + 3 * x[2]!]);
  }
  return { xs, ys };
}

const base = (dir: string): TrainerConfig => ({
  lr: 0.05,
  betas: [0.9, 0.95],
  gradAccum: 2,
  clipNorm: 1,
  allowedGradnormFactor: 20,
  batchSize: 2,
  numEpochs: 1000,
  maxPasses: 9,
  warmup: 2,
  checkpointEvery: 1000,
  printEvery: 1,
  visEvery: 1000,
  validateEvery: null,
  seed: 3,
  checkpointDir: dir,
});

test('planRun: whole epochs, overshooting max passes to the next epoch boundary (spec §8)', () => {
  assert.deepEqual(planRun(10, { batchSize: 2, numEpochs: 100, maxPasses: 12, gradAccum: 2 }), {
    passesPerEpoch: 5,
    epochs: 3,
    totalPasses: 15,
    totalUpdates: 7,
  });
  assert.deepEqual(planRun(1, { batchSize: 2, numEpochs: 100, maxPasses: 3, gradAccum: 1 }), {
    passesPerEpoch: 1,
    epochs: 4,
    totalPasses: 4,
    totalUpdates: 4,
  });
  assert.equal(planRun(10, { batchSize: 2, numEpochs: 2, maxPasses: 1000, gradAccum: 1 }).totalPasses, 10);
});

test('cosineWithWarmup equals transformers.get_cosine_schedule_with_warmup', () => {
  const want = [0, 0.25, 0.5, 0.75, 1, 0.9330127, 0.75, 0.5, 0.25, 0.0669873, 0];
  want.forEach((v, k) =>
    assert.ok(Math.abs(cosineWithWarmup(k, 4, 10) - v) < 1e-6, `step ${k}: ${cosineWithWarmup(k, 4, 10)} vs ${v}`),
  );
});

test('Trainer: AdamW groups, cosine warm-up per update, accumulation and clipping equal torch (1.13) doing the same', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trainer-'));
  try {
    const { xs, ys } = data(8);
    const step = new LinearStep(xs, ys);
    const cfg = base(dir);
    const t = new Trainer(step, { length: 8, load: async (idx) => [...idx] }, cfg);
    const out = await t.run();
    assert.equal(out.pass, 12); // 4 passes per epoch, 3 epochs
    const script = `
import sys, json, math, torch
d = json.loads(sys.argv[1])
w = torch.tensor(d['w0'], dtype=torch.float32).reshape(3, 2).requires_grad_()
b = torch.tensor([0., 0.], requires_grad=True)
X = torch.tensor(d['xs']); Y = torch.tensor(d['ys'])
opt = torch.optim.AdamW([{'params': [w], 'weight_decay': 0.05}, {'params': [b], 'weight_decay': 0.0}], lr=0.05, betas=(0.9, 0.95))
total = d['updates']
def lam(s):
    if s < 2: return s / max(1, 2)
    p = (s - 2) / max(1, total - 2)
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * p)))
sched = torch.optim.lr_scheduler.LambdaLR(opt, lam)
for k, batch in enumerate(d['batches']):
    loss = ((X[batch] @ w + b - Y[batch]) ** 2).mean() / 2
    loss.backward()
    if (k + 1) % 2 == 0:
        torch.nn.utils.clip_grad_norm_([w, b], 1.0)
        opt.step(); sched.step(); opt.zero_grad()
print(json.dumps({'w': w.detach().flatten().tolist(), 'b': b.detach().tolist()}))`;
    const r = JSON.parse(
      runTorchPython(script, [
        JSON.stringify({
          w0: [0.1, -0.2, 0.3, 0.05, -0.1, 0.2],
          xs,
          ys,
          batches: step.seen,
          updates: t.plan.totalUpdates,
        }),
      ]),
    ) as { w: number[]; b: number[] };
    [...step.params.get('w')!].forEach((v, i) =>
      assert.ok(Math.abs(v - r.w[i]!) < 2e-6, `w[${i}] ${v} vs torch ${r.w[i]}`),
    );
    [...step.params.get('b')!].forEach((v, i) =>
      assert.ok(Math.abs(v - r.b[i]!) < 2e-6, `b[${i}] ${v} vs torch ${r.b[i]}`),
    );
    // Each epoch visits every sample once, in a seeded order that differs between epochs.
    const epochs = [0, 1, 2].map((e) =>
      step.seen
        .slice(4 * e, 4 * e + 4)
        .flat()
        .sort((a, b) => a - b),
    );
    for (const e of epochs) assert.deepEqual(e, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.notDeepEqual(step.seen.slice(0, 4), step.seen.slice(4, 8));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Trainer: a non-finite loss or a gradient norm over clip × 20 skips the update, the schedule still steps', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trainer-'));
  try {
    const { xs, ys } = data(8);
    const step = new LinearStep(xs, ys);
    step.nanAt.add(1);
    step.gainAt.set(4, 1e6);
    const rows: Array<Record<string, number>> = [];
    const t = new Trainer(
      step,
      { length: 8, load: async (idx) => [...idx] },
      { ...base(dir), maxPasses: 5 },
      {
        onLog: (r) => {
          rows.push(r);
        },
      },
    );
    const w0 = Float32Array.from(step.params.get('w')!);
    await t.run();
    const byStep = new Map(rows.map((r) => [r.step, r]));
    assert.equal(byStep.get(2)!.skipped, 1, 'NaN loss in the accumulation window → skipped');
    assert.ok(Number.isNaN(byStep.get(2)!.grad_norm));
    assert.equal(byStep.get(4)!.skipped, 0);
    assert.equal(byStep.get(6)!.skipped, 1, 'norm × 1e6 exceeds 20 → skipped');
    assert.ok(byStep.get(6)!.grad_norm > 20);
    assert.equal(byStep.get(8)!.skipped, 0);
    assert.notDeepEqual(step.params.get('w'), w0);
    const ck = await readCheckpoint(await t.checkpoint());
    assert.equal(ck.training!.schedulerSteps, 4, 'the scheduler steps at every accumulation boundary');
    assert.equal(ck.training!.adam.step, 2, 'AdamW stepped only for the 2 applied updates');
    assert.equal(ck.training!.paramUpdateStep, 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A "wide" parameter (≥ 4096 values, so 8-bit moments apply) fitted to fixed targets. */
class WideStep implements TrainStep<number[]> {
  readonly params = new Map<string, Float32Array>([
    ['w', Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i) * 0.1)],
  ]);
  readonly shapes = new Map([['w', [50, 100]]]);
  readonly frozen = new Set<string>();
  readonly grads = new Map<string, Float32Array>();
  weightDecay(): number {
    return 0.05;
  }
  async run(batch: number[], _pass: number, scale: number): Promise<StepResult> {
    const w = this.params.get('w')!,
      g = this.grads.get('w')!;
    let loss = 0;
    for (const b of batch)
      for (let i = 0; i < w.length; i++) {
        const e = w[i]! - Math.cos(i * (b + 1));
        loss += (e * e) / w.length;
        g[i] += ((2 * e) / w.length) * scale;
      }
    return { loss, metrics: {} };
  }
  async close(): Promise<void> {}
}

test("Trainer with 8-bit moments: checkpoints keep bitsandbytes' state layout, and a resumed run continues bit for bit", async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trainer8-'));
  try {
    const cfg = { ...base(dir), maxPasses: 11, gradAccum: 1, moments: '8bit' as const, checkpointEvery: 6 };
    const data = { length: 4, load: async (idx: readonly number[]) => [...idx] };
    const a = new WideStep();
    const rowsA: number[] = [];
    await new Trainer(a, data, cfg, {
      onLog: (r) => {
        rowsA.push(r.loss);
      },
    }).run();
    const b = new WideStep();
    const rowsB: number[] = [];
    let n = 0;
    await new Trainer(
      b,
      data,
      { ...cfg, checkpointDir: join(dir, 'b') },
      {
        onLog: (r) => {
          rowsB.push(r.loss);
        },
      },
    ).run(() => ++n >= 6);
    const ck = await readCheckpoint(join(dir, 'b', 'ckpt_0000000000000006.pt'));
    const mo = ck.training!.adam.moments.get('w')!;
    assert.equal(mo.kind, '8bit');
    const c = new WideStep();
    for (const [k, v] of ck.model) c.params.set(k, v);
    await new Trainer(
      c,
      data,
      { ...cfg, checkpointDir: join(dir, 'b') },
      {
        onLog: (r) => {
          rowsB.push(r.loss);
        },
      },
      ck.training,
    ).run();
    assert.deepEqual(rowsB, rowsA);
    assert.deepEqual(c.params.get('w'), a.params.get('w'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
