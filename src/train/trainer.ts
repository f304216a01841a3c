/**
 * The training loop shared by both models (design.md §8; the reference's `train_gslrm.py` mechanics, spec gslrm.md
 * §8): job size in whole epochs, data order per epoch, gradient accumulation, the per-update rules (skip on a
 * non-finite loss, nan_to_num, global-norm clip, skip when the norm exceeds clip × factor), AdamW, a per-update
 * schedule that steps even when an update is skipped, logging, visual/validation cadence and checkpoints —
 * periodic, at the end, and when asked to stop (signals, a time budget).
 *
 * Everything that changes during a run (weights, moments, counters, history) goes into the checkpoint and data
 * order is a function of (seed, epoch), so a run resumed from pass p continues bit for bit as if never stopped.
 */
import { MomentAdamW, shareMoments, type MomentStorage } from './optim/adamw.ts';
import type { Ema } from './optim/ema.ts';
import { sharedFloat32 } from './optim/pool.ts';
import type { LoadedCheckpoint, ParamGroup, TrainState } from './checkpoint.ts';
import { writeCheckpoint } from './checkpoint.ts';
import { clipFactor } from './grad-rules.ts';
import { streamRng } from './rng.ts';
import { cosineWithWarmup } from './schedule.ts';
import type { StepResult, TrainStep } from './step.ts';

/** Loads the items of one batch; `pass` names the draw (random views, backgrounds) so that it is reproducible. */
export interface BatchSource<B> {
  readonly length: number;
  load(indices: readonly number[], pass: number): Promise<B>;
}

export interface TrainerConfig {
  lr: number;
  betas: readonly [number, number];
  eps?: number;
  gradAccum: number;
  clipNorm: number;
  allowedGradnormFactor: number;
  batchSize: number;
  numEpochs: number;
  maxPasses: number;
  /** Warm-up in parameter updates. */
  warmup: number;
  checkpointEvery: number;
  printEvery: number;
  visEvery: number;
  /** Validation cadence in passes (null: off). Validation also runs at the first pass, as the reference does. */
  validateEvery: number | null;
  seed: number;
  checkpointDir: string;
  /** AdamW moment storage (default fp32; '8bit' = bitsandbytes' blockwise 8-bit AdamW). */
  moments?: MomentStorage;
  /**
   * Extra threads for the optimizer's loops (default 0). Parameters must then be in SharedArrayBuffers
   * (`shareAll`) for their updates to be spread; the trainer allocates gradients and moments that way itself.
   */
  optimizerWorkers?: number;
  /** Rate multiplier of the update with scheduler index k (default: cosine with `warmup`, over the plan). */
  schedule?: (k: number) => number;
  /** Job size in passes, instead of whole epochs (diffusers' `max_train_steps` × accumulation). */
  totalPasses?: number;
  /** Where checkpoints go (default: the reference's `ckpt_*.pt` files in `checkpointDir`). */
  store?: CheckpointStore;
  /** A moving average of the weights, stepped after every update and saved with the checkpoints. */
  ema?: Ema;
  /**
   * When the sanity-check validation runs: before training ('start', train_gslrm.py) or after the first update
   * ('first-update', train_diffusion.py's `validation_sanity_check`).
   */
  firstValidation?: 'start' | 'first-update' | 'none';
}

/** Writes a training state somewhere (a file, a folder); returns its path. */
export interface CheckpointStore {
  write(state: TrainState): Promise<string>;
}

/** One logged row: `step` is the forward/backward pass count after the pass. */
export type LogRow = Record<string, number> & { step: number; loss: number; lr: number; grad_norm: number };

export interface TrainerHooks {
  /** After every pass (progress bars). */
  onPass?(pass: number, total: number, result: StepResult): void;
  /** Every `printEvery` passes. */
  onLog?(row: LogRow): void | Promise<void>;
  onVisual?(pass: number): Promise<void>;
  onValidate?(pass: number): Promise<void>;
  onCheckpoint?(path: string, pass: number): void | Promise<void>;
}

export interface RunPlan {
  passesPerEpoch: number;
  epochs: number;
  totalPasses: number;
  totalUpdates: number;
}

/** The reference's job size: whole epochs, overshooting max_fwdbwd_passes up to the next epoch boundary. */
export function planRun(
  samples: number,
  c: Pick<TrainerConfig, 'batchSize' | 'numEpochs' | 'maxPasses' | 'gradAccum' | 'totalPasses'>,
): RunPlan {
  const passesPerEpoch = Math.max(1, Math.floor(samples / c.batchSize));
  if (c.totalPasses !== undefined) {
    const totalPasses = c.totalPasses;
    const epochs = Math.ceil(totalPasses / passesPerEpoch);
    return { passesPerEpoch, epochs, totalPasses, totalUpdates: Math.floor(totalPasses / c.gradAccum) };
  }
  const epochs = Math.min(c.numEpochs, Math.floor(c.maxPasses / passesPerEpoch) + 1);
  const totalPasses = passesPerEpoch * epochs;
  return { passesPerEpoch, epochs, totalPasses, totalUpdates: Math.floor(totalPasses / c.gradAccum) };
}

export interface RunOutcome {
  pass: number;
  stopped: boolean;
  checkpoint: string | null;
}

export class Trainer<B> {
  readonly plan: RunPlan;
  private readonly opt: MomentAdamW;
  private readonly groups: ParamGroup[];
  private pass = 0;
  private updates = 0;
  private schedulerSteps = 0;
  private readonly history: LogRow[] = [];
  private lastCheckpoint: string | null = null;
  private lastCheckpointPass = -1;

  constructor(
    private readonly step: TrainStep<B>,
    private readonly data: BatchSource<B>,
    private readonly cfg: TrainerConfig,
    private readonly hooks: TrainerHooks = {},
    resume: LoadedCheckpoint['training'] = null,
  ) {
    this.plan = planRun(data.length, cfg);
    this.groups = paramGroups([...step.params.keys()], step.frozen, (n) => step.weightDecay(n));
    const trainable = this.groups.flatMap((g) => g.names);
    this.opt = new MomentAdamW(step.params, {
      betas: [cfg.betas[0], cfg.betas[1]],
      eps: cfg.eps ?? 1e-8,
      weightDecay: (name) => step.weightDecay(name),
      moments: cfg.moments ?? 'fp32',
      workers: cfg.optimizerWorkers ?? 0,
    });
    const alloc = (n: number) => (cfg.optimizerWorkers ? sharedFloat32(n) : new Float32Array(n));
    for (const n of trainable) if (!step.grads.has(n)) step.grads.set(n, alloc(step.params.get(n)!.length));
    if (resume) {
      this.pass = resume.fwdbwdPassStep;
      this.updates = resume.paramUpdateStep;
      this.schedulerSteps = resume.schedulerSteps;
      this.opt.t = resume.adam.step;
      for (const [n, m] of resume.adam.moments) this.opt.state.set(n, cfg.optimizerWorkers ? shareMoments(m) : m);
      this.history.push(...(resume.history as LogRow[]));
    }
  }

  /** The parameter groups as the optimizer state numbers them (decay group first). */
  get paramGroups(): readonly ParamGroup[] {
    return this.groups;
  }
  get passes(): number {
    return this.pass;
  }
  get rows(): readonly LogRow[] {
    return this.history;
  }

  /** Rate multiplier of the update with scheduler index `k`. */
  private multiplier(k: number): number {
    return this.cfg.schedule ? this.cfg.schedule(k) : cosineWithWarmup(k, this.cfg.warmup, this.plan.totalUpdates);
  }

  private indices(pass: number): number[] {
    const { passesPerEpoch } = this.plan;
    const epoch = Math.floor(pass / passesPerEpoch),
      b = pass % passesPerEpoch;
    const perm = streamRng(this.cfg.seed, 'epoch', epoch).permutation(this.data.length);
    return perm.slice(b * this.cfg.batchSize, (b + 1) * this.cfg.batchSize);
  }

  /** Runs until the plan is done or `shouldStop()` turns true (checked after every pass); always ends on a checkpoint. */
  async run(shouldStop: () => boolean = () => false): Promise<RunOutcome> {
    const { totalPasses } = this.plan;
    const load = (p: number) => (p < totalPasses ? this.data.load(this.indices(p), p) : null);
    let next = load(this.pass);
    let accumLosses: number[] = [];
    let stopped = false;
    const firstValidation = this.cfg.firstValidation ?? 'start';
    if (this.pass === 0 && this.cfg.validateEvery !== null && firstValidation === 'start')
      await this.hooks.onValidate?.(0);
    while (this.pass < totalPasses) {
      const batch = await next!;
      next = load(this.pass + 1);
      const result = await this.step.run(batch, this.pass, 1 / this.cfg.gradAccum);
      accumLosses.push(result.loss);
      this.pass++;
      let gradNorm = NaN,
        skipped = 0;
      if (this.pass % this.cfg.gradAccum === 0) {
        ({ gradNorm, skipped } = await this.update(accumLosses));
        accumLosses = [];
      }
      this.hooks.onPass?.(this.pass, totalPasses, result);
      if (this.pass % this.cfg.printEvery === 0 || this.pass === totalPasses) {
        const row: LogRow = {
          step: this.pass,
          loss: result.loss,
          ...result.metrics,
          lr: this.cfg.lr * this.multiplier(Math.max(0, this.schedulerSteps - 1)),
          grad_norm: gradNorm,
          skipped,
          update: this.updates,
        };
        this.history.push(row);
        await this.hooks.onLog?.(row);
      }
      if (this.pass % this.cfg.visEvery === 0) await this.hooks.onVisual?.(this.pass);
      const sanity = firstValidation === 'first-update' && this.pass === this.cfg.gradAccum;
      if (this.cfg.validateEvery !== null && (this.pass % this.cfg.validateEvery === 0 || sanity))
        await this.hooks.onValidate?.(this.pass);
      const done = this.pass === totalPasses;
      stopped = !done && shouldStop();
      if (done || stopped || this.pass % this.cfg.checkpointEvery === 0) await this.checkpoint();
      if (stopped) break;
    }
    await next?.catch(() => undefined);
    return { pass: this.pass, stopped, checkpoint: this.lastCheckpoint };
  }

  /**
   * One accumulation boundary: the reference's skip rules (nan_to_num, global norm, clip, skip above
   * clip × allowed factor), AdamW, and a scheduler step either way. Clipping and zeroing run inside the update's
   * pass over each parameter.
   */
  private async update(losses: number[]): Promise<{ gradNorm: number; skipped: number }> {
    const grads = [...this.step.grads.values()];
    let gradNorm = NaN,
      skipped = 1;
    if (losses.every(Number.isFinite)) {
      gradNorm = Math.sqrt(await this.opt.cleanAndSumSquares(grads));
      if (gradNorm <= this.cfg.clipNorm * this.cfg.allowedGradnormFactor) {
        const lr = this.cfg.lr * this.multiplier(this.schedulerSteps);
        await this.opt.step(this.step.grads, lr, {
          gradScale: clipFactor(gradNorm, this.cfg.clipNorm),
          zeroGrad: true,
        });
        skipped = 0;
      }
    }
    this.schedulerSteps++;
    this.updates++;
    if (skipped) await this.opt.zero(grads);
    this.cfg.ema?.step(this.step.params);
    return { gradNorm, skipped };
  }

  /** Stops the optimizer's worker threads. */
  async close(): Promise<void> {
    await this.opt.close();
  }

  async checkpoint(): Promise<string> {
    if (this.lastCheckpoint && this.lastCheckpointPass === this.pass) return this.lastCheckpoint;
    const state: TrainState = {
      model: [...this.step.params].map(([name, data]) => ({
        name,
        shape: this.step.shapes.get(name) ?? [data.length],
        data,
      })),
      adam: { step: this.opt.t, moments: this.opt.state },
      groups: this.groups,
      lr: this.cfg.lr,
      betas: this.cfg.betas,
      eps: this.cfg.eps ?? 1e-8,
      schedulerSteps: this.schedulerSteps,
      lastLr: this.multiplier(this.schedulerSteps),
      fwdbwdPassStep: this.pass,
      paramUpdateStep: this.updates,
      history: this.history,
      ...(this.cfg.ema ? { ema: this.cfg.ema } : {}),
    };
    const store = this.cfg.store ?? { write: (s: TrainState) => writeCheckpoint(this.cfg.checkpointDir, s) };
    this.lastCheckpoint = await store.write(state);
    this.lastCheckpointPass = this.pass;
    await this.hooks.onCheckpoint?.(this.lastCheckpoint, this.pass);
    return this.lastCheckpoint;
  }
}

/**
 * The reference's optimizer groups: trainable tensors with weight decay (≥ 2-D) first, then those without, each in
 * state-dict order. torch numbers the optimizer state in this order.
 */
export function paramGroups(
  names: readonly string[],
  frozen: ReadonlySet<string>,
  decay: (name: string) => number,
): ParamGroup[] {
  const trainable = names.filter((n) => !frozen.has(n));
  const withDecay = trainable.filter((n) => decay(n) > 0);
  return [
    { names: withDecay, weightDecay: withDecay.length ? decay(withDecay[0]!) : 0 },
    { names: trainable.filter((n) => decay(n) === 0), weightDecay: 0 },
  ];
}
